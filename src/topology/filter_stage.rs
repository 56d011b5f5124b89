//! The filter task: runs the pipeline's filters over each batch, in order.
//! A batch whose events were all dropped is acknowledged here: dropped
//! events count as delivered.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::StageError;
use crate::event::Batch;
use crate::filter::{self, FilterSpec};

pub async fn run(
    filters: Vec<FilterSpec>,
    mut input: mpsc::Receiver<Batch>,
    output: mpsc::Sender<Batch>,
    pipeline: Arc<str>,
) -> Result<(), StageError> {
    let labels = [
        ("pipeline", pipeline.to_string()),
        ("stage", "filter".to_owned()),
    ];
    let events_in = metrics::counter!("logpipe_events_in_total", &labels);
    let events_out = metrics::counter!("logpipe_events_out_total", &labels);
    let filtered = metrics::counter!("logpipe_events_filtered_total", &labels);
    let batch_size = metrics::histogram!("logpipe_batch_events", &labels);
    while let Some(mut batch) = input.recv().await {
        let before = batch.events.len();
        events_in.increment(before as u64);
        batch_size.record(before as f64);
        filter::apply_all(&filters, &mut batch.events);
        events_out.increment(batch.events.len() as u64);
        filtered.increment((before - batch.events.len()) as u64);
        if batch.events.is_empty() {
            batch.ack.ack();
            continue;
        }
        if output.send(batch).await.is_err() {
            return Err(StageError::Fatal("the next stage stopped".into()));
        }
    }
    Ok(())
}
