//! Lists of stage tables (`[[input]]`, `[[filter]]`, `[[output]]`, and the
//! filters inside an `if`), each table dispatched on its `type` to the
//! `build` function its registry passes in: the registries call this, it
//! calls none of them.

use toml::de::DeValue;
use toml::Spanned;

use super::{take, ConfigCx};
use crate::condition::Condition;

/// A built stage with its optional `if` and the span of its table.
#[derive(Debug)]
pub struct Staged<T> {
    pub condition: Option<Condition>,
    pub stage: T,
    pub span: std::ops::Range<usize>,
}

/// Builds one list of stage tables, each dispatched on its `type`. With
/// `conditional`, the `if` key is taken out and compiled here for every
/// stage, so stage configs need not know about it (and keep rejecting
/// unknown keys).
pub fn stages<T>(
    raw: Option<Spanned<DeValue<'_>>>,
    section: &str,
    conditional: bool,
    cx: &mut ConfigCx<'_>,
    build: fn(&Spanned<String>, Spanned<DeValue<'_>>, &mut ConfigCx<'_>) -> Option<T>,
) -> Vec<Staged<T>> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let span = raw.span();
    let DeValue::Array(items) = raw.into_inner() else {
        cx.error(
            &span,
            format!("`{section}` must be a list of tables (write [[{section}]])"),
        );
        return Vec::new();
    };
    let mut built = Vec::new();
    for item in items {
        let span = item.span();
        let DeValue::Table(mut table) = item.into_inner() else {
            cx.error(&span, format!("each {section} must be a table"));
            continue;
        };
        let Some(kind) = take(&mut table, "type") else {
            cx.error(&span, format!("this {section} has no `type`"));
            continue;
        };
        let kind_span = kind.span();
        let Some(kind_text) = kind.get_ref().as_str().map(str::to_owned) else {
            cx.error(&kind_span, "`type` must be a string");
            continue;
        };
        let kind = Spanned::new(kind_span, kind_text);
        let mut condition = None;
        let mut condition_ok = true;
        if conditional {
            if let Some(raw_if) = take(&mut table, "if") {
                let if_span = raw_if.span();
                match raw_if.get_ref().as_str() {
                    Some(text) => {
                        condition = cx.condition(&Spanned::new(if_span, text.to_owned()));
                        condition_ok = condition.is_some();
                    }
                    None => {
                        cx.error(&if_span, "`if` must be a string holding a condition");
                        condition_ok = false;
                    }
                }
            }
        }
        let stage = build(&kind, Spanned::new(span.clone(), DeValue::Table(table)), cx);
        if let (Some(stage), true) = (stage, condition_ok) {
            built.push(Staged {
                condition,
                stage,
                span,
            });
        }
    }
    built
}

/// The error for a `type` that names no stage.
pub fn unknown_type(cx: &mut ConfigCx<'_>, section: &str, kind: &Spanned<String>, known: &[&str]) {
    cx.error(
        &kind.span(),
        format!(
            "unknown {section} type `{}` (expected one of: {})",
            kind.get_ref(),
            known.join(", ")
        ),
    );
}
