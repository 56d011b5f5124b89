//! The `dead_letter` input: reads a dead-letter file (written by
//! [`crate::dead_letter`]) back as events, so that events refused
//! for good can be replayed once the cause (usually a mapping) is fixed.
//!
//! Each record's `event` becomes the event again, its `@metadata` restored
//! (so the origin `_id` and hence the document id are the same as on the
//! first attempt: replaying twice cannot duplicate). Why it was refused is
//! kept in `[@metadata][dead_letter]` (`reason`, `status`, `error_type`,
//! `index`, `pipeline`), never indexed but usable in templates and `if`.
//!
//! The file is read once, to its end; the input then waits until every
//! batch is acknowledged and stops, so `logpipe run replay.toml` exits when
//! the replay is done. It keeps no checkpoint: a replay is an operator's
//! one-off action, and re-running it is harmless thanks to the ids.

use std::path::PathBuf;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use toml::Spanned;

use crate::ack::AckTracker;
use crate::config::ConfigCx;
use crate::dead_letter::parse_record;
use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;

/// `[[input]] type = "dead_letter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The dead-letter file to replay, e.g.
    /// `/var/lib/logpipe/dead-letter/httpd-access.ndjson`. Rotated files
    /// (`.1`, `.2`, …) are replayed by naming them in more inputs.
    pub path: String,
    /// Events per batch (default 500; at least 1).
    pub batch_events: Option<Spanned<usize>>,
    /// Tags added to every replayed event (e.g. `["_replayed"]`).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A validated `dead_letter` input.
#[derive(Debug, Clone)]
pub struct DeadLetterInput {
    pub path: PathBuf,
    pub batch_events: usize,
    pub tags: Vec<String>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<DeadLetterInput> {
        let batch_events = cx.at_least_one(self.batch_events.as_ref(), "batch_events", 500)?;
        Some(DeadLetterInput {
            path: cx.path(&self.path),
            batch_events,
            tags: self.tags,
        })
    }
}

impl DeadLetterInput {
    pub async fn run(self, out: mpsc::Sender<Batch>, cx: RunCx) -> Result<(), StageError> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| StageError::io("cannot open dead-letter file", &self.path, e))?;
        let mut lines = BufReader::new(file).lines();
        let mut tracker =
            AckTracker::<u64>::new().counting(std::sync::Arc::clone(cx.books.ledger()));
        let lane = tracker.open_lane();
        let (mut line_no, mut skipped, mut sent) = (0u64, 0u64, 0u64);
        let mut events = Vec::with_capacity(self.batch_events);
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line
                    .map_err(|e| StageError::io("cannot read dead-letter file", &self.path, e))?,
                _ = cx.shutdown.stop.cancelled() => None,
            };
            let end = line.is_none();
            if let Some(line) = line {
                line_no += 1;
                if line.trim().is_empty() {
                    continue;
                }
                match parse_record(&line) {
                    Ok(mut event) => {
                        for tag in &self.tags {
                            event.add_tag(tag);
                        }
                        events.push(event);
                    }
                    Err(error) => {
                        skipped += 1;
                        tracing::warn!(path = %self.path.display(), line = line_no, %error, "Skipping a line that is not a dead-letter record.");
                    }
                }
            }
            if events.len() >= self.batch_events || (end && !events.is_empty()) {
                sent += events.len() as u64;
                let token = tracker.track(lane, line_no, events.len());
                let batch = Batch::new(std::mem::take(&mut events), token);
                tokio::select! {
                    r = out.send(batch) => if r.is_err() { break },
                    _ = cx.shutdown.abort.cancelled() => break,
                }
                tracker.drain();
            }
            if end {
                break;
            }
        }
        drop(out);
        while tracker.in_flight() > 0 && !tracker.has_failed() {
            tokio::select! {
                _ = tracker.recv() => {}
                _ = cx.shutdown.abort.cancelled() => break,
            }
        }
        if tracker.has_failed() || tracker.in_flight() > 0 {
            crate::shutdown::record_undelivered(
                &cx.pipeline,
                "input.dead_letter",
                tracker.in_flight(),
            );
            return Err(StageError::Undelivered);
        }
        tracing::info!(path = %self.path.display(), events = sent, skipped, "Dead-letter file replayed.");
        Ok(())
    }
}
