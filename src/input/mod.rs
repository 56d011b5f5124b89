//! Inputs: where events come from. The registry is the `match` in [`build`]
//! and [`InputSpec::run`]; a new input is one module, one variant, two arms.
//!
//! The Kafka consumer is not listed here: it is the index half of a
//! pipeline's `[kafka]` hop (see [`kafka`]).

pub mod dead_letter;
pub mod file;
pub mod kafka;

use tokio::sync::mpsc;
use toml::de::DeValue;
use toml::Spanned;

use crate::config::stages::unknown_type;
use crate::config::ConfigCx;
use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;

const TYPES: &[&str] = &["file", "dead_letter"];

#[derive(Debug, Clone)]
pub enum InputSpec {
    File(Box<file::FileInput>),
    DeadLetter(dead_letter::DeadLetterInput),
}

/// Builds an `[[input]]` table of type `kind`.
pub fn build(
    kind: &Spanned<String>,
    value: Spanned<DeValue<'_>>,
    cx: &mut ConfigCx<'_>,
) -> Option<InputSpec> {
    match kind.get_ref().as_str() {
        "file" => cx
            .de::<file::Config>(value)?
            .validate(cx)
            .map(|f| InputSpec::File(Box::new(f))),
        "dead_letter" => cx
            .de::<dead_letter::Config>(value)?
            .validate(cx)
            .map(InputSpec::DeadLetter),
        _ => {
            unknown_type(cx, "input", kind, TYPES);
            None
        }
    }
}

impl InputSpec {
    /// The stage name used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            InputSpec::File(_) => "input.file",
            InputSpec::DeadLetter(_) => "input.dead_letter",
        }
    }

    pub async fn run(self, out: mpsc::Sender<Batch>, cx: RunCx) -> Result<(), StageError> {
        match self {
            InputSpec::File(input) => (*input).run(out, cx).await,
            InputSpec::DeadLetter(input) => input.run(out, cx).await,
        }
    }
}
