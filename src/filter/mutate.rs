//! `mutate`: rename, copy, replace, convert, gsub, case, strip, split and
//! merge fields, then add and remove fields and tags, in Logstash's order
//! (rename, replace, convert, gsub, uppercase, lowercase, strip, split,
//! merge, copy, then the common add/remove options).

use std::collections::BTreeMap;

use crate::event::{Number, TimeText, Value};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::Verdict;
use crate::config::ConfigCx;
use crate::event::Event;
use crate::event::FieldRef;
use crate::template::Template;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `{ "old" = "[new][name]" }`
    #[serde(default)]
    pub rename: BTreeMap<String, Spanned<String>>,
    /// Sets fields to templated values, replacing what is there.
    #[serde(default)]
    pub replace: BTreeMap<String, Spanned<String>>,
    /// `{ field = "integer" }`: `integer`, `float`, `boolean` or `string`.
    /// Lists are converted element by element; a value that does not convert
    /// is left as it is.
    #[serde(default)]
    pub convert: BTreeMap<String, Spanned<String>>,
    /// Regex substitutions on string fields, three strings per substitution
    /// as in Logstash: `["field", "regex", "replacement", …]`. The
    /// replacement may use `\1` or `$1` for groups.
    #[serde(default)]
    pub gsub: Vec<Spanned<String>>,
    /// Fields whose strings are upper-cased.
    #[serde(default)]
    pub uppercase: Vec<Spanned<String>>,
    /// Fields whose strings are lower-cased.
    #[serde(default)]
    pub lowercase: Vec<Spanned<String>>,
    /// Fields whose strings lose leading and trailing whitespace.
    #[serde(default)]
    pub strip: Vec<Spanned<String>>,
    /// `{ field = "," }`: a string field becomes the list of its parts.
    #[serde(default)]
    pub split: BTreeMap<String, Spanned<String>>,
    /// `{ destination = "source" }`: appends the source's value(s) to the
    /// destination, making it a list.
    #[serde(default)]
    pub merge: BTreeMap<String, Spanned<String>>,
    /// `{ source = "destination" }`: copies a field, replacing the destination.
    #[serde(default)]
    pub copy: BTreeMap<String, Spanned<String>>,
    /// Sets fields to templated values; an existing field becomes a list.
    #[serde(default)]
    pub add_field: BTreeMap<String, Spanned<String>>,
    /// Fields removed.
    #[serde(default)]
    pub remove_field: Vec<Spanned<String>>,
    /// Tags added (templated).
    #[serde(default)]
    pub add_tag: Vec<Spanned<String>>,
    /// Tags removed (templated).
    #[serde(default)]
    pub remove_tag: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Mutate {
    rename: Vec<(FieldRef, FieldRef)>,
    replace: Vec<(FieldRef, Template)>,
    convert: Vec<(FieldRef, Conversion)>,
    gsub: Vec<(FieldRef, Regex, String)>,
    uppercase: Vec<FieldRef>,
    lowercase: Vec<FieldRef>,
    strip: Vec<FieldRef>,
    split: Vec<(FieldRef, String)>,
    merge: Vec<(FieldRef, FieldRef)>,
    copy: Vec<(FieldRef, FieldRef)>,
    add_field: Vec<(FieldRef, Template)>,
    remove_field: Vec<FieldRef>,
    add_tag: Vec<Template>,
    remove_tag: Vec<Template>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<Mutate> {
        let mut ok = true;
        let mut field_pairs = |map: BTreeMap<String, Spanned<String>>, cx: &mut ConfigCx<'_>| {
            let mut out = Vec::new();
            for (name, value) in map {
                let name = Spanned::new(value.span(), name);
                match (cx.field(&name), cx.template(&value)) {
                    (Some(f), Some(t)) => out.push((f, t)),
                    _ => ok = false,
                }
            }
            out
        };
        let replace = field_pairs(self.replace, cx);
        let add_field = field_pairs(self.add_field, cx);
        let mut field_to_field = |map: BTreeMap<String, Spanned<String>>, cx: &mut ConfigCx<'_>| {
            let mut out = Vec::new();
            for (from, to) in map {
                let from_spanned = Spanned::new(to.span(), from);
                match (cx.field(&from_spanned), cx.field(&to)) {
                    (Some(a), Some(b)) => out.push((a, b)),
                    _ => ok = false,
                }
            }
            out
        };
        let rename = field_to_field(self.rename, cx);
        let copy = field_to_field(self.copy, cx);
        // `merge` is written destination = source; stored as (source, destination).
        let merge = field_to_field(self.merge, cx)
            .into_iter()
            .map(|(dest, src)| (src, dest))
            .collect();
        let mut convert = Vec::new();
        for (field, kind) in self.convert {
            let name = Spanned::new(kind.span(), field);
            let conversion = match kind.get_ref().as_str() {
                "integer" | "int" => Some(Conversion::Integer),
                "float" => Some(Conversion::Float),
                "boolean" | "bool" => Some(Conversion::Boolean),
                "string" => Some(Conversion::String),
                other => {
                    cx.error(
                        &kind.span(),
                        format!("unknown conversion `{other}` (expected integer, float, boolean or string)"),
                    );
                    None
                }
            };
            match (cx.field(&name), conversion) {
                (Some(f), Some(c)) => convert.push((f, c)),
                _ => ok = false,
            }
        }
        let mut gsub = Vec::new();
        if !self.gsub.len().is_multiple_of(3) {
            if let Some(last) = self.gsub.last() {
                cx.error(
                    &last.span(),
                    "gsub takes three strings per substitution: field, regex, replacement",
                );
            }
            ok = false;
        }
        for triple in self.gsub.chunks_exact(3) {
            let field = cx.field(&triple[0]);
            let regex = match Regex::new(triple[1].get_ref()) {
                Ok(r) => Some(r),
                Err(e) => {
                    cx.error(&triple[1].span(), format!("invalid regex: {e}"));
                    None
                }
            };
            match (field, regex) {
                (Some(f), Some(r)) => gsub.push((f, r, ruby_backrefs(triple[2].get_ref()))),
                _ => ok = false,
            }
        }
        let mut split = Vec::new();
        for (field, separator) in self.split {
            match cx.field(&Spanned::new(separator.span(), field)) {
                Some(f) => split.push((f, separator.into_inner())),
                None => ok = false,
            }
        }
        let mut fields = |list: &[Spanned<String>], cx: &mut ConfigCx<'_>| {
            let out: Vec<FieldRef> = list.iter().filter_map(|f| cx.field(f)).collect();
            ok &= out.len() == list.len();
            out
        };
        let uppercase = fields(&self.uppercase, cx);
        let lowercase = fields(&self.lowercase, cx);
        let strip = fields(&self.strip, cx);
        let remove_field: Vec<FieldRef> = self
            .remove_field
            .iter()
            .filter_map(|f| cx.field(f))
            .collect();
        let add_tag: Vec<Template> = self.add_tag.iter().filter_map(|t| cx.template(t)).collect();
        let remove_tag: Vec<Template> = self
            .remove_tag
            .iter()
            .filter_map(|t| cx.template(t))
            .collect();
        ok &= remove_field.len() == self.remove_field.len()
            && add_tag.len() == self.add_tag.len()
            && remove_tag.len() == self.remove_tag.len();
        ok.then_some(Mutate {
            rename,
            replace,
            convert,
            gsub,
            uppercase,
            lowercase,
            strip,
            split,
            merge,
            copy,
            add_field,
            remove_field,
            add_tag,
            remove_tag,
        })
    }
}

impl Mutate {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        for (from, to) in &self.rename {
            if let Some(value) = event.remove(from) {
                event.insert(to, value);
            }
        }
        for (field, value) in &self.replace {
            let rendered = value.render(event);
            event.insert(field, Value::from(rendered));
        }
        for (field, conversion) in &self.convert {
            if let Some(value) = event.get_mut(field) {
                match value {
                    Value::Array(items) => items.iter_mut().for_each(|i| conversion.apply(i)),
                    other => conversion.apply(other),
                }
            }
        }
        for (field, regex, replacement) in &self.gsub {
            map_strings(event, field, |s| {
                match regex.replace_all(s, replacement.as_str()) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(changed) => Some(changed),
                }
            });
        }
        for field in &self.uppercase {
            map_strings(event, field, |s| Some(s.to_uppercase()));
        }
        for field in &self.lowercase {
            map_strings(event, field, |s| Some(s.to_lowercase()));
        }
        for field in &self.strip {
            map_strings(event, field, |s| {
                let trimmed = s.trim();
                (trimmed.len() != s.len()).then(|| trimmed.to_owned())
            });
        }
        for (field, separator) in &self.split {
            if let Some(value) = event.get_mut(field) {
                if let Value::String(s) = value {
                    let parts = s.split(separator.as_str()).map(Value::from).collect();
                    *value = Value::Array(parts);
                }
            }
        }
        for (source, destination) in &self.merge {
            let Some(added) = event.get(source).cloned() else {
                continue;
            };
            let added = match added {
                Value::Array(items) => items,
                other => vec![other],
            };
            match event.get_mut(destination) {
                Some(Value::Array(items)) => items.extend(added),
                Some(existing) => {
                    let previous = std::mem::take(existing);
                    let mut items = vec![previous];
                    items.extend(added);
                    *existing = Value::Array(items);
                }
                None => event.insert(destination, Value::Array(added)),
            }
        }
        for (source, destination) in &self.copy {
            if let Some(value) = event.get(source).cloned() {
                event.insert(destination, value);
            }
        }
        for field in &self.remove_field {
            event.remove(field);
        }
        for (field, value) in &self.add_field {
            let rendered = Value::from(value.render(event));
            match event.get_mut(field) {
                // Logstash turns an existing field into a list.
                Some(Value::Array(items)) => items.push(rendered),
                Some(existing) => {
                    let previous = std::mem::take(existing);
                    *existing = Value::Array(vec![previous, rendered]);
                }
                None => event.insert(field, rendered),
            }
        }
        for tag in &self.add_tag {
            let tag = tag.render(event);
            event.add_tag(&tag);
        }
        for tag in &self.remove_tag {
            let tag = tag.render(event);
            event.remove_tag(&tag);
        }
        Verdict::Keep
    }
}

/// A `convert` target type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    Integer,
    Float,
    Boolean,
    String,
}

impl Conversion {
    /// Converts in place; a value that does not convert is left as it is.
    fn apply(self, value: &mut Value) {
        let converted = match (self, &*value) {
            (Conversion::String, Value::String(_)) => None,
            (Conversion::String, Value::Null) => None,
            (Conversion::String, Value::Time(t)) => Some(Value::from(TimeText::new(t).as_str())),
            (Conversion::String, other) => Some(Value::from(other.to_string())),
            (Conversion::Integer, Value::String(s)) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        s.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(|f| f as i64)
                    })
                    .map(Value::from)
            }
            (Conversion::Integer, Value::Number(n)) if !n.is_i64() && !n.is_u64() => {
                n.as_f64().map(|f| Value::from(f as i64))
            }
            (Conversion::Integer, Value::Bool(b)) => Some(Value::from(i64::from(*b))),
            (Conversion::Float, Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
            (Conversion::Float, Value::Number(n)) => {
                n.as_f64().and_then(Number::from_f64).map(Value::Number)
            }
            (Conversion::Float, Value::Bool(b)) => Some(Value::from(if *b { 1.0 } else { 0.0 })),
            (Conversion::Boolean, Value::String(s)) => {
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(Value::Bool(true)),
                    "false" | "f" | "no" | "n" | "0" | "0.0" => Some(Value::Bool(false)),
                    _ => None,
                }
            }
            (Conversion::Boolean, Value::Number(n)) => match n.as_f64() {
                Some(1.0) => Some(Value::Bool(true)),
                Some(0.0) => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        };
        if let Some(converted) = converted {
            *value = converted;
        }
    }
}

/// Applies `f` to a string field, or to each string of a list field;
/// `None` from `f` means unchanged.
fn map_strings(event: &mut Event, field: &FieldRef, f: impl Fn(&str) -> Option<String>) {
    match event.get_mut(field) {
        Some(Value::String(s)) => {
            if let Some(changed) = f(s) {
                *s = changed.into();
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::String(s) = item {
                    if let Some(changed) = f(s) {
                        *s = changed.into();
                    }
                }
            }
        }
        _ => {}
    }
}

/// Logstash replacements use Ruby's `\1`; the regex crate uses `${1}`.
fn ruby_backrefs(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                out.push(*d);
                out.push('}');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use serde_json::json;

    fn mutate(text: &str) -> Mutate {
        let source = Source::new("p.toml", text);
        let mut cx = ConfigCx::new(&source);
        let table = toml::de::DeTable::parse(text).unwrap();
        let span = table.span();
        let m = cx
            .de::<Config>(Spanned::new(
                span,
                toml::de::DeValue::Table(table.into_inner()),
            ))
            .and_then(|c| c.validate(&mut cx));
        assert!(cx.diagnostics.is_empty(), "{:?}", cx.diagnostics);
        m.unwrap()
    }

    fn apply(text: &str, fields: serde_json::Value) -> Value {
        let mut event = Event {
            fields: fields.as_object().unwrap().clone().into(),
            ..Event::default()
        };
        mutate(text).apply(&mut event);
        Value::Object(event.fields)
    }

    #[test]
    fn convert_turns_strings_into_typed_values() {
        let out = apply(
            r#"convert = { a = "integer", b = "float", c = "boolean", d = "string", e = "integer", f = "integer" }"#,
            json!({"a": "42", "b": "2.5", "c": "yes", "d": 7, "e": ["1", "2"], "f": "x"}),
        );
        assert_eq!(
            out,
            json!({"a": 42, "b": 2.5, "c": true, "d": "7", "e": [1, 2], "f": "x"})
        );
    }

    #[test]
    fn gsub_case_and_strip_change_strings_in_place() {
        let out = apply(
            r#"gsub = ["p", "/+", "/", "q", "(a)(b)", "\\2\\1"]
uppercase = ["u"]
lowercase = ["l"]
strip = ["s"]"#,
            json!({"p": "//a///b", "q": "ab", "u": "abc", "l": ["ABC", "De"], "s": "  x "}),
        );
        assert_eq!(
            out,
            json!({"p": "/a/b", "q": "ba", "u": "ABC", "l": ["abc", "de"], "s": "x"})
        );
    }

    #[test]
    fn split_merge_copy_and_rename_move_values_around() {
        let out = apply(
            r#"split = { list = "," }
merge = { dest = "list" }
copy = { src = "[nested][copy]" }
rename = { old = "new" }"#,
            json!({"list": "a,b", "dest": "z", "src": 1, "old": true}),
        );
        assert_eq!(
            out,
            json!({"list": ["a", "b"], "dest": ["z", "a", "b"], "src": 1, "nested": {"copy": 1}, "new": true})
        );
    }

    #[test]
    fn fields_and_tags_are_added_and_removed_with_templates() {
        let out = apply(
            r#"add_field = { "[event][dataset]" = "apache.%{kind}" }
remove_field = ["junk"]
add_tag = ["t_%{kind}"]"#,
            json!({"kind": "access", "junk": 1}),
        );
        assert_eq!(
            out,
            json!({"kind": "access", "event": {"dataset": "apache.access"}, "tags": ["t_access"]})
        );
    }

    #[test]
    fn a_gsub_list_of_the_wrong_length_is_an_error() {
        let text = r#"gsub = ["a", "b"]"#;
        let source = Source::new("p.toml", text);
        let mut cx = ConfigCx::new(&source);
        let table = toml::de::DeTable::parse(text).unwrap();
        let span = table.span();
        let m = cx
            .de::<Config>(Spanned::new(
                span,
                toml::de::DeValue::Table(table.into_inner()),
            ))
            .and_then(|c| c.validate(&mut cx));
        assert!(m.is_none());
        assert!(cx.diagnostics[0].to_string().contains("three strings"));
    }
}
