//! The `null` output: acknowledges every batch at once and keeps nothing.
//! For benchmarks (parse-only runs) and for measuring a pipeline without
//! its destination.

use tokio::sync::mpsc;

use crate::accounting::Outcome;
use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;

/// `[[output]] type = "null"` takes no settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

pub async fn run(mut input: mpsc::Receiver<Batch>, cx: RunCx) -> Result<(), StageError> {
    let events_out = metrics::counter!(
        "logpipe_events_out_total",
        "pipeline" => cx.pipeline.to_string(),
        "stage" => "output.null"
    );
    while let Some(batch) = input.recv().await {
        events_out.increment(batch.events.len() as u64);
        cx.books
            .settled(Outcome::Delivered, batch.events.len() as u64);
        batch.ack.ack();
    }
    Ok(())
}
