//! One batch to every output: each gets the events and a clone of the
//! token, so the source hears "delivered" only when every output delivered.

use tokio::sync::mpsc;

use crate::error::StageError;
use crate::event::Batch;

pub async fn run(
    mut input: mpsc::Receiver<Batch>,
    outputs: Vec<mpsc::Sender<Batch>>,
) -> Result<(), StageError> {
    while let Some(batch) = input.recv().await {
        if let [only] = outputs.as_slice() {
            if only.send(batch).await.is_err() {
                return Err(StageError::Fatal("an output stopped".into()));
            }
            continue;
        }
        for output in &outputs {
            let copy = Batch::new(batch.events.clone(), batch.ack.clone());
            if output.send(copy).await.is_err() {
                return Err(StageError::Fatal("an output stopped".into()));
            }
        }
        // The clones now decide the outcome; this share is done.
        batch.ack.ack();
    }
    Ok(())
}
