//! The `file` input: tails files matched by globs, one event per line (or
//! per multiline record), with checkpoints that only move past lines
//! acknowledged downstream.
//!
//! Each followed file is one lane of an [`AckTracker`](crate::ack::AckTracker);
//! its registry entry (keyed by content fingerprint, see [`fingerprint`])
//! stores the offset just past the last acknowledged line. Reading happens on
//! blocking threads in large chunks; when downstream is slow the `send`
//! waits, so the file on disk is the buffer.
//!
//! - [`config`]: the settings and their validation; [`exclude`]: what an
//!   `exclude` pattern matches.
//! - `tail`: the loop, acknowledgements into checkpoints, releasing files.
//! - `files`: the state of followed files and the checkpoints by identity.
//! - `scan`: discovery with its own state (globs, links, special files,
//!   renames, which files to open and where to start in them).
//! - `watch`: inotify and when to look again.
//! - `round`: reading rounds, truncation and copytruncate, timeouts, sending.
//! - [`reader`]: one file as lines; [`multiline`]: joining lines.
//! - `line_event`: the event of a line; [`fingerprint`]: identity and origin ids.
//! - [`registry`]: the checkpoint file.

pub mod config;
pub mod exclude;
mod files;
pub mod fingerprint;
pub mod line_event;
pub mod multiline;
pub mod reader;
pub mod registry;
mod round;
mod scan;
mod tail;
mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;
use crate::telemetry::Throttle;
pub use config::{Config, FileInput, OnCorruptCheckpoint, StartPosition};
use registry::{Entry, Registry, Stored};
use tail::Tail;

impl FileInput {
    /// Where this input keeps its checkpoints.
    pub fn registry_path(&self, cx: &RunCx) -> PathBuf {
        self.registry_file(&cx.state_dir, &cx.pipeline)
    }

    /// Where this input of `pipeline` keeps its checkpoints under
    /// `state_dir` (also where `logpipe import` seeds them).
    pub fn registry_file(&self, state_dir: &std::path::Path, pipeline: &str) -> PathBuf {
        state_dir
            .join("checkpoints")
            .join(pipeline)
            .join(format!("{}.json", self.id))
    }

    pub async fn run(mut self, out: mpsc::Sender<Batch>, cx: RunCx) -> Result<(), StageError> {
        let registry = self
            .checkpoint
            .then(|| Registry::new(self.registry_path(&cx)));
        // `start_position` applies only to a first start: without a
        // registry. Files that appear while logpipe is down are new files,
        // read from their beginning.
        let (known, first_start) = match &registry {
            Some(reg) => match self.load_checkpoints(reg, &cx).await? {
                Some(loaded) => loaded,
                None => return Ok(()), // stopped while waiting
            },
            None => (HashMap::new(), true),
        };
        let mut tail = Tail::new(self, cx, known, registry, first_start);
        let result = tail.follow(&out).await;
        drop(out);
        let finished = tail.finish().await;
        result.and(finished)
    }

    /// The checkpoints and whether this is a first start, once the registry
    /// could be read; `None` when the input was stopped before that.
    ///
    /// A registry that exists but cannot be read may hold good positions:
    /// starting without it would read files per `start_position` and then
    /// overwrite it. So the input does not start; it says why (log and
    /// `/health`) and tries again until the registry can be read (an
    /// operator fixed its permissions, the disk came back). In a one-shot
    /// run (`exit_after_eof`) it fails instead.
    async fn load_checkpoints(
        &mut self,
        reg: &Registry,
        cx: &RunCx,
    ) -> Result<Option<(HashMap<String, Entry>, bool)>, StageError> {
        let health_key = format!("input.file[{}]", self.id);
        let mut throttle = Throttle::new(Duration::from_secs(60));
        let mut waited = false;
        loop {
            let attempt = reg.clone();
            let loaded = tokio::task::spawn_blocking(move || attempt.load())
                .await
                .map_err(|e| StageError::Fatal(format!("checkpoint reader thread failed: {e}")))?;
            match loaded {
                Ok(loaded) => {
                    if waited {
                        crate::monitor::health::ended(&cx.pipeline, &health_key);
                        tracing::info!(registry = %reg.path().display(), "The checkpoint registry can be read again; starting the input.");
                    }
                    return Ok(Some(self.apply(reg, loaded)));
                }
                Err(e) if self.exit_after_eof => return Err(StageError::Fatal(e.to_string())),
                Err(e) => {
                    let reason = format!("{e}; the input does not start until it can be read");
                    crate::monitor::health::failed(&cx.pipeline, &health_key, &reason);
                    if let Some(suppressed) = throttle.ready() {
                        tracing::error!(registry = %reg.path().display(), error = %e, suppressed, "Cannot use the checkpoint registry; not reading any file of this input (nothing is skipped or overwritten); trying again every {}s.", RETRY_UNREADABLE.as_secs());
                    }
                    waited = true;
                    tokio::select! {
                        _ = cx.shutdown.stop.cancelled() => {
                            crate::monitor::health::ended(&cx.pipeline, &health_key);
                            return Ok(None);
                        }
                        _ = tokio::time::sleep(RETRY_UNREADABLE) => {}
                    }
                }
            }
        }
    }

    /// The checkpoints from what loading found, and whether this counts as a
    /// first start.
    fn apply(&mut self, reg: &Registry, loaded: Stored) -> (HashMap<String, Entry>, bool) {
        match loaded {
            Stored::Fresh => (HashMap::new(), true),
            Stored::Ok(entries) => (
                entries
                    .into_iter()
                    .map(|e| (e.identity.clone(), e))
                    .collect(),
                false,
            ),
            Stored::Corrupt { reason, moved_to } => {
                let from = match self.on_corrupt_checkpoint {
                    OnCorruptCheckpoint::Beginning => {
                        self.start_position = StartPosition::Beginning;
                        "reading every file from its beginning (lines already shipped are sent again with their origin ids, so Elasticsearch keeps one copy)"
                    }
                    OnCorruptCheckpoint::StartPosition => {
                        "reading files per start_position (on_corrupt_checkpoint = \"start_position\")"
                    }
                };
                tracing::error!(
                    registry = %reg.path().display(),
                    moved_to = %moved_to.display(),
                    %reason,
                    "The checkpoint registry is corrupt; moved it aside (its bytes are kept there) and {from}."
                );
                (HashMap::new(), true)
            }
        }
    }
}

/// How often an unreadable checkpoint registry is tried again.
const RETRY_UNREADABLE: Duration = Duration::from_secs(5);
