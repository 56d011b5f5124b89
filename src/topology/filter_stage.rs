//! The filter task: runs the pipeline's filters over each batch, in order.
//! A batch whose events were all dropped is acknowledged here: dropped
//! events count as delivered.
//!
//! Several workers take batches from the same channel, so the filters use
//! more than one core. Batches may then leave out of order; that is safe
//! because a source moves its checkpoint only over a gap-free run of
//! delivered batches (see [`crate::ack`]).

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::accounting::Books;
use crate::error::StageError;
use crate::event::Batch;
use crate::filter::{self, FilterSpec};
use crate::monitor::tap;

pub async fn run(
    filters: Vec<FilterSpec>,
    workers: usize,
    input: mpsc::Receiver<Batch>,
    output: mpsc::Sender<Batch>,
    (pipeline, books): (Arc<str>, Books),
) -> Result<(), StageError> {
    // Without filters there is nothing to spread over cores.
    let workers = if filters.is_empty() {
        1
    } else {
        workers.max(1)
    };
    let filters = Arc::new(filters);
    let input = Arc::new(Mutex::new(input));
    let mut running = JoinSet::new();
    for _ in 0..workers {
        // Each worker is watched on its own: the stage task only waits for
        // them, and a worker stuck in a filter must stop the watchdog.
        running.spawn(
            crate::monitor::heartbeat::watch(
                &pipeline,
                "filter",
                worker(
                    Arc::clone(&filters),
                    Arc::clone(&input),
                    output.clone(),
                    (Arc::clone(&pipeline), books.clone()),
                ),
            )
            .instrument(tracing::Span::current()),
        );
    }
    drop(output);
    let mut result = Ok(());
    while let Some(done) = running.join_next().await {
        let done =
            done.unwrap_or_else(|e| Err(StageError::Fatal(format!("filter worker failed: {e}"))));
        if let (Err(e), Ok(())) = (done, &result) {
            result = Err(e);
        }
    }
    result
}

async fn worker(
    filters: Arc<Vec<FilterSpec>>,
    input: Arc<Mutex<mpsc::Receiver<Batch>>>,
    output: mpsc::Sender<Batch>,
    (pipeline, books): (Arc<str>, Books),
) -> Result<(), StageError> {
    let labels = [
        ("pipeline", pipeline.to_string()),
        ("stage", "filter".to_owned()),
    ];
    let events_in = metrics::counter!("logpipe_events_in_total", &labels);
    let events_out = metrics::counter!("logpipe_events_out_total", &labels);
    let filtered = metrics::counter!("logpipe_events_filtered_total", &labels);
    let batch_size = metrics::histogram!("logpipe_batch_events", &labels);
    loop {
        // The lock is held only while waiting for the next batch.
        let Some(mut batch) = input.lock().await.recv().await else {
            return Ok(());
        };
        let before = batch.events.len();
        events_in.increment(before as u64);
        batch_size.record(before as f64);
        tap::offer(&pipeline, tap::Point::Input, &batch.events);
        filter::apply_all(&filters, &mut batch.events);
        crate::monitor::heartbeat::test_wedge("filter");
        tap::offer(&pipeline, tap::Point::Filters, &batch.events);
        events_out.increment(batch.events.len() as u64);
        filtered.increment((before - batch.events.len()) as u64);
        // Counted before the batch moves on or is acknowledged.
        books.filtered(before - batch.events.len());
        if batch.events.is_empty() {
            batch.ack.ack();
            continue;
        }
        if output.send(batch).await.is_err() {
            return Err(StageError::Fatal("the next stage stopped".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckTracker;
    use crate::event::Event;
    use serde_json::json;

    fn filters(dir: &std::path::Path) -> Vec<FilterSpec> {
        let path = dir.join("p.toml");
        std::fs::write(
            &path,
            "[[input]]\ntype = \"file\"\npaths = [\"/nonexistent\"]\n\
             [[filter]]\ntype = \"drop\"\nif = '[drop]'\n\
             [[filter]]\ntype = \"mutate\"\nadd_tag = [\"seen\"]\n\
             [[output]]\ntype = \"null\"\n",
        )
        .unwrap();
        let mut loaded = crate::pipeline::load(&[path], &|_: &str| None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        std::mem::take(&mut loaded.pipelines[0].filters)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_filter_every_batch_and_the_checkpoint_stays_gap_free() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel(2);
        let (out_tx, mut out_rx) = mpsc::channel(2);
        let stage = tokio::spawn(run(
            filters(dir.path()),
            3,
            rx,
            out_tx,
            (Arc::from("t"), Books::detached("t")),
        ));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let mut tokens = Vec::new();
        for i in 0..40u64 {
            tokens.push(tracker.track(lane, i, 10));
        }
        let feed = tokio::spawn(async move {
            for (i, token) in tokens.into_iter().enumerate() {
                let events = (0..10)
                    .map(|n| {
                        let mut e = Event::from_message(format!("{i}-{n}"));
                        if i % 4 == 0 {
                            e.fields.insert("drop".into(), json!(true));
                        }
                        e
                    })
                    .collect();
                tx.send(Batch::new(events, token)).await.unwrap();
            }
        });
        let mut seen = 0;
        while let Some(batch) = out_rx.recv().await {
            assert!(batch.events.iter().all(|e| e.has_tag("seen")));
            seen += batch.events.len();
            batch.ack.ack();
        }
        feed.await.unwrap();
        stage.await.unwrap().unwrap();
        assert_eq!(seen, 30 * 10, "every batch but the dropped ones");
        tracker.drain();
        assert!(!tracker.has_failed());
        assert_eq!(tracker.take_progress(), vec![(lane, 39)]);
    }
}
