//! Filters: synchronous per-event transforms run by the filter stage, in
//! order. A filter never does I/O and never drops an event by failing: a
//! parse failure adds a tag and the event goes on. The registry is the
//! `match` in [`build`].

pub mod mutate;

use toml::de::DeValue;
use toml::Spanned;

use crate::config::pipeline::unknown_type;
use crate::config::Cx;
use crate::event::Event;

const TYPES: &[&str] = &["mutate", "drop"];

/// What happens to an event after a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Removed from the stream; counts as delivered for acknowledgements.
    Drop,
}

#[derive(Debug, Clone)]
pub enum FilterSpec {
    Mutate(mutate::Mutate),
    Drop,
}

/// Builds a `[[filter]]` table of type `kind`.
pub fn build(
    kind: &Spanned<String>,
    value: Spanned<DeValue<'_>>,
    cx: &mut Cx<'_>,
) -> Option<FilterSpec> {
    match kind.get_ref().as_str() {
        "mutate" => cx
            .de::<mutate::Config>(value)?
            .validate(cx)
            .map(FilterSpec::Mutate),
        "drop" => {
            cx.de::<DropConfig>(value)?;
            Some(FilterSpec::Drop)
        }
        _ => {
            unknown_type(cx, "filter", kind, TYPES);
            None
        }
    }
}

/// `[[filter]] type = "drop"` takes no settings.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DropConfig {}

impl FilterSpec {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        match self {
            FilterSpec::Mutate(m) => m.apply(event),
            FilterSpec::Drop => Verdict::Drop,
        }
    }
}

/// Runs `filters` over `events` in order, removing dropped events.
pub fn apply_all(filters: &[FilterSpec], events: &mut Vec<Event>) {
    if filters.is_empty() {
        return;
    }
    events.retain_mut(|event| filters.iter().all(|f| f.apply(event) == Verdict::Keep));
}
