//! The `stdout` output: one JSON object per event per line, for the
//! quickstart and for debugging. A batch is acknowledged once written and
//! flushed.

use std::io::Write;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::accounting::Outcome;
use crate::error::StageError;
use crate::event::json::{Document, WithMetadata};
use crate::event::{Batch, Event};
use crate::shutdown::RunCx;

/// `[[output]] type = "stdout"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Include `@metadata` in what is printed (default false).
    #[serde(default)]
    pub metadata: bool,
}

#[derive(Debug, Clone)]
pub struct Stdout {
    pub metadata: bool,
}

impl Config {
    pub fn validate(self) -> Stdout {
        Stdout {
            metadata: self.metadata,
        }
    }
}

/// The line printed for an event.
pub fn render(event: &Event, metadata: bool, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if metadata && !event.metadata.is_empty() {
        serde_json::to_writer(&mut *out, &WithMetadata(event))?;
    } else {
        serde_json::to_writer(&mut *out, &Document(event))?;
    }
    out.push(b'\n');
    Ok(())
}

impl Stdout {
    pub async fn run(self, mut input: mpsc::Receiver<Batch>, cx: RunCx) -> Result<(), StageError> {
        let events_out = metrics::counter!(
            "logpipe_events_out_total",
            "pipeline" => cx.pipeline.to_string(),
            "stage" => "output.stdout"
        );
        // Unlike the other outputs, stdout is not aborted at the drain
        // deadline: a write to it is quick unless the reader stalls.
        while let Some(batch) = input.recv().await {
            let mut text = Vec::with_capacity(batch.events.len() * 256);
            for event in &batch.events {
                render(event, self.metadata, &mut text)
                    .map_err(|e| StageError::Fatal(format!("cannot encode event: {e}")))?;
            }
            let written = tokio::task::spawn_blocking(move || {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&text)?;
                stdout.flush()
            })
            .await
            .map_err(|e| StageError::Fatal(format!("stdout writer failed: {e}")))?;
            match written {
                Ok(()) => {
                    events_out.increment(batch.events.len() as u64);
                    cx.books
                        .settled(Outcome::Delivered, batch.events.len() as u64);
                    batch.ack.ack();
                }
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(StageError::Fatal("stdout was closed".into()))
                }
                Err(e) => return Err(StageError::Fatal(format!("cannot write to stdout: {e}"))),
            }
        }
        Ok(())
    }
}
