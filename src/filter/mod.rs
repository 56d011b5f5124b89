//! Filters: synchronous per-event transforms run by the filter stage, in
//! order. A filter never does I/O and never drops an event by failing: a
//! parse failure adds a tag and the event goes on. The registry is the
//! `match` in [`build`].
//!
//! Any `[[filter]]` may carry `if = '<condition>'` (see [`crate::condition`]); the
//! `type = "if"` filter holds `then` and `else` lists of filters, so
//! `else if` is an `if` filter inside `else`.

pub mod date;
pub mod geoip;
pub mod grok;
pub mod json;
pub mod mutate;
pub mod urldecode;
pub mod useragent;

use serde::Deserialize;
use toml::de::DeValue;
use toml::Spanned;

use crate::condition::Condition;
use crate::config::stages::{stages, unknown_type, Staged};
use crate::config::{take, ConfigCx};
use crate::event::Event;

const TYPES: &[&str] = &[
    "grok",
    "date",
    "mutate",
    "json",
    "urldecode",
    "useragent",
    "geoip",
    "drop",
    "if",
];

/// What happens to an event after a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Removed from the stream; counts as delivered for acknowledgements.
    Drop,
}

#[derive(Debug, Clone)]
pub enum FilterSpec {
    Grok(Box<grok::Grok>),
    Date(Box<date::Date>),
    Mutate(mutate::Mutate),
    Json(json::Json),
    UrlDecode(urldecode::UrlDecode),
    UserAgent(Box<useragent::UserAgent>),
    GeoIp(Box<geoip::GeoIp>),
    Drop,
    If(Box<If>),
}

/// A conditional: `then` runs when the condition holds, `else` otherwise.
#[derive(Debug, Clone)]
pub struct If {
    /// `None` only while building, before the table's `if` is attached.
    condition: Option<Condition>,
    then: Vec<FilterSpec>,
    otherwise: Vec<FilterSpec>,
}

/// `[[filter]] type = "if"`: everything but `then` and `else` is rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IfConfig {}

/// Builds a `[[filter]]` table of type `kind`.
pub fn build(
    kind: &Spanned<String>,
    value: Spanned<DeValue<'_>>,
    cx: &mut ConfigCx<'_>,
) -> Option<FilterSpec> {
    match kind.get_ref().as_str() {
        "grok" => {
            let span = value.span();
            let DeValue::Table(mut table) = value.into_inner() else {
                return None;
            };
            let matches = grok::take_matches(&mut table, &span, cx);
            let config = cx.de::<grok::Config>(Spanned::new(span, DeValue::Table(table)))?;
            config
                .validate(matches?, cx)
                .map(|g| FilterSpec::Grok(Box::new(g)))
        }
        "date" => cx
            .de::<date::Config>(value)?
            .validate(cx)
            .map(|d| FilterSpec::Date(Box::new(d))),
        "mutate" => cx
            .de::<mutate::Config>(value)?
            .validate(cx)
            .map(FilterSpec::Mutate),
        "json" => cx
            .de::<json::Config>(value)?
            .validate(cx)
            .map(FilterSpec::Json),
        "urldecode" => cx
            .de::<urldecode::Config>(value)?
            .validate(cx)
            .map(FilterSpec::UrlDecode),
        "useragent" => cx
            .de::<useragent::Config>(value)?
            .validate(cx)
            .map(|u| FilterSpec::UserAgent(Box::new(u))),
        "geoip" => cx
            .de::<geoip::Config>(value)?
            .validate(cx)
            .map(|g| FilterSpec::GeoIp(Box::new(g))),
        "drop" => {
            cx.de::<DropConfig>(value)?;
            Some(FilterSpec::Drop)
        }
        "if" => build_if(value, cx),
        _ => {
            unknown_type(cx, "filter", kind, TYPES);
            None
        }
    }
}

fn build_if(value: Spanned<DeValue<'_>>, cx: &mut ConfigCx<'_>) -> Option<FilterSpec> {
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        return None;
    };
    let then = take(&mut table, "then");
    let otherwise = take(&mut table, "else");
    if then.is_none() && otherwise.is_none() {
        cx.error(
            &span,
            "an `if` filter needs `then` or `else` (lists of filters)",
        );
    }
    let then = stages(then, "filter", true, cx, build);
    let otherwise = stages(otherwise, "filter", true, cx, build);
    cx.de::<IfConfig>(Spanned::new(span, DeValue::Table(table)))?;
    Some(FilterSpec::If(Box::new(If {
        condition: None,
        then: chain(then, cx),
        otherwise: chain(otherwise, cx),
    })))
}

/// Attaches each stage's `if` to its filter: a filter with a condition
/// becomes an `if` filter around it, and an `if` filter takes the condition
/// as its own.
pub fn chain(staged: Vec<Staged<FilterSpec>>, cx: &mut ConfigCx<'_>) -> Vec<FilterSpec> {
    let mut out = Vec::with_capacity(staged.len());
    for Staged {
        condition,
        stage,
        span,
    } in staged
    {
        match (stage, condition) {
            (FilterSpec::If(mut conditional), Some(condition)) => {
                conditional.condition = Some(condition);
                out.push(FilterSpec::If(conditional));
            }
            (FilterSpec::If(_), None) => {
                cx.error(
                    &span,
                    "a filter of type \"if\" needs an `if = '<condition>'`",
                );
            }
            (filter, Some(condition)) => out.push(FilterSpec::If(Box::new(If {
                condition: Some(condition),
                then: vec![filter],
                otherwise: Vec::new(),
            }))),
            (filter, None) => out.push(filter),
        }
    }
    out
}

/// `[[filter]] type = "drop"` takes no settings.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DropConfig {}

impl FilterSpec {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        match self {
            FilterSpec::Grok(g) => g.apply(event),
            FilterSpec::Date(d) => d.apply(event),
            FilterSpec::Mutate(m) => m.apply(event),
            FilterSpec::Json(j) => j.apply(event),
            FilterSpec::UrlDecode(u) => u.apply(event),
            FilterSpec::UserAgent(u) => u.apply(event),
            FilterSpec::GeoIp(g) => g.apply(event),
            FilterSpec::Drop => Verdict::Drop,
            FilterSpec::If(conditional) => {
                let holds = conditional
                    .condition
                    .as_ref()
                    .is_some_and(|c| c.eval(event));
                let branch = if holds {
                    &conditional.then
                } else {
                    &conditional.otherwise
                };
                apply_chain(branch, event)
            }
        }
    }
}

/// Runs `filters` over one event in order, stopping at a drop.
pub fn apply_chain(filters: &[FilterSpec], event: &mut Event) -> Verdict {
    for filter in filters {
        if filter.apply(event) == Verdict::Drop {
            return Verdict::Drop;
        }
    }
    Verdict::Keep
}

/// Runs `filters` over `events` in order, removing dropped events.
pub fn apply_all(filters: &[FilterSpec], events: &mut Vec<Event>) {
    if filters.is_empty() {
        return;
    }
    events.retain_mut(|event| apply_chain(filters, event) == Verdict::Keep);
}
