//! The filter task: runs the pipeline's filters over each batch, in order.
//! A batch whose events were all dropped is acknowledged here: dropped
//! events count as delivered.

use tokio::sync::mpsc;

use crate::error::StageError;
use crate::event::Batch;
use crate::filter::{self, FilterSpec};

pub async fn run(
    filters: Vec<FilterSpec>,
    mut input: mpsc::Receiver<Batch>,
    output: mpsc::Sender<Batch>,
) -> Result<(), StageError> {
    while let Some(mut batch) = input.recv().await {
        filter::apply_all(&filters, &mut batch.events);
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
