//! Outputs: where events end. Every output acknowledges a batch only once
//! its events are delivered or dead-lettered, and never drops a token
//! silently. The registry is the `match` in [`build`] and [`OutputSpec::run`].
//!
//! The Kafka producer is not listed here: it is the ship half of a
//! pipeline's `[kafka]` hop (see [`kafka`]). Dead letters: [`crate::dead_letter`].

pub mod elasticsearch;
pub mod kafka;
pub mod null;
pub mod settings;
pub mod stdout;

use tokio::sync::mpsc;
use toml::de::DeValue;
use toml::Spanned;

use crate::config::stages::unknown_type;
use crate::config::ConfigCx;
use crate::dead_letter::DeadLetters;
use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;

const TYPES: &[&str] = &["elasticsearch", "null", "stdout"];

#[derive(Debug, Clone)]
pub enum OutputSpec {
    Elasticsearch(Box<elasticsearch::Elasticsearch>),
    Null,
    Stdout(stdout::Stdout),
}

pub use settings::{DeadLetterFile, Output, WhenBlocked};

/// Builds an `[[output]]` table of type `kind`: its common settings
/// ([`settings`]) and its own.
pub fn build(
    kind: &Spanned<String>,
    value: Spanned<DeValue<'_>>,
    cx: &mut ConfigCx<'_>,
) -> Option<(settings::Taken, OutputSpec)> {
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        cx.error(&span, "each output must be a table");
        return None;
    };
    let common = settings::take(&mut table, &span, cx);
    let spec = build_spec(kind, Spanned::new(span, DeValue::Table(table)), cx);
    Some((common?, spec?))
}

fn build_spec(
    kind: &Spanned<String>,
    value: Spanned<DeValue<'_>>,
    cx: &mut ConfigCx<'_>,
) -> Option<OutputSpec> {
    match kind.get_ref().as_str() {
        "elasticsearch" => cx
            .de::<elasticsearch::Config>(value)?
            .validate(cx)
            .map(|es| OutputSpec::Elasticsearch(Box::new(es))),
        "null" => cx.de::<null::Config>(value).map(|_| OutputSpec::Null),
        "stdout" => Some(OutputSpec::Stdout(
            cx.de::<stdout::Config>(value)?.validate(),
        )),
        _ => {
            unknown_type(cx, "output", kind, TYPES);
            None
        }
    }
}

impl OutputSpec {
    pub fn name(&self) -> &'static str {
        match self {
            OutputSpec::Elasticsearch(_) => "output.elasticsearch",
            OutputSpec::Null => "output.null",
            OutputSpec::Stdout(_) => "output.stdout",
        }
    }

    pub async fn run(
        self,
        input: mpsc::Receiver<Batch>,
        cx: RunCx,
        dead_letters: DeadLetters,
    ) -> Result<(), StageError> {
        match self {
            OutputSpec::Elasticsearch(es) => es.run(input, cx, dead_letters).await,
            OutputSpec::Null => null::run(input, cx).await,
            OutputSpec::Stdout(out) => out.run(input, cx).await,
        }
    }
}
