//! `mutate`: rename, replace, add and remove fields and tags, in Logstash's
//! order (rename, replace, then the common add/remove options).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::Verdict;
use crate::config::Cx;
use crate::event::Event;
use crate::template::{FieldRef, Template};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `{ "old" = "[new][name]" }`
    #[serde(default)]
    pub rename: BTreeMap<String, Spanned<String>>,
    /// Sets fields to templated values, replacing what is there.
    #[serde(default)]
    pub replace: BTreeMap<String, Spanned<String>>,
    /// Sets fields to templated values.
    #[serde(default)]
    pub add_field: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub remove_field: Vec<Spanned<String>>,
    #[serde(default)]
    pub add_tag: Vec<Spanned<String>>,
    #[serde(default)]
    pub remove_tag: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Mutate {
    rename: Vec<(FieldRef, FieldRef)>,
    replace: Vec<(FieldRef, Template)>,
    add_field: Vec<(FieldRef, Template)>,
    remove_field: Vec<FieldRef>,
    add_tag: Vec<Template>,
    remove_tag: Vec<Template>,
}

impl Config {
    pub fn validate(self, cx: &mut Cx<'_>) -> Option<Mutate> {
        let mut ok = true;
        let mut field_pairs = |map: BTreeMap<String, Spanned<String>>, cx: &mut Cx<'_>| {
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
        let mut rename = Vec::new();
        for (from, to) in self.rename {
            let from_spanned = Spanned::new(to.span(), from);
            match (cx.field(&from_spanned), cx.field(&to)) {
                (Some(a), Some(b)) => rename.push((a, b)),
                _ => ok = false,
            }
        }
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
            event.insert(field, Value::String(rendered));
        }
        for field in &self.remove_field {
            event.remove(field);
        }
        for (field, value) in &self.add_field {
            let rendered = Value::String(value.render(event));
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
