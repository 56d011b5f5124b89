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
//! - [`config`]: the settings and their validation.
//! - `tail`: the loop, acknowledgements into checkpoints, releasing files.
//! - `scan`: discovery (globs, inotify, rescans), renames, opening files.
//! - `read`: reading rounds, truncation and copytruncate, timeouts, sending.
//! - [`reader`]: one file as lines; [`multiline`]: joining lines.
//! - `fields`: the event of a line; [`fingerprint`]: identity and origin ids.
//! - [`registry`]: the checkpoint file.

pub mod config;
pub(crate) mod fields;
pub mod fingerprint;
pub mod multiline;
mod read;
pub mod reader;
pub mod registry;
mod scan;
mod tail;

use std::collections::HashMap;
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::StageCx;
pub use config::{Config, FileInput, StartPosition};
use registry::{Entry, Loaded, Registry};
use tail::Tail;

impl FileInput {
    /// Where this input keeps its checkpoints.
    pub fn registry_path(&self, cx: &StageCx) -> PathBuf {
        cx.state_dir
            .join("checkpoints")
            .join(&*cx.pipeline)
            .join(format!("{}.json", self.id))
    }

    pub async fn run(self, out: mpsc::Sender<Batch>, cx: StageCx) -> Result<(), StageError> {
        let registry = self
            .checkpoint
            .then(|| Registry::new(self.registry_path(&cx)));
        // `start_position` applies only to a first start: without a
        // registry. Files that appear while logpipe is down are new files,
        // read from their beginning.
        let (known, first_start) = match &registry {
            Some(reg) => load_registry(reg.clone()).await,
            None => (HashMap::new(), true),
        };
        let mut tail = Tail::new(self, cx, known, registry);
        tail.first_scan = first_start;
        let result = tail.follow(&out).await;
        drop(out);
        tail.finish().await;
        result
    }
}

/// The checkpoints, and whether this is a first start (no usable registry).
async fn load_registry(reg: Registry) -> (HashMap<String, Entry>, bool) {
    let path = reg.path().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || reg.load())
        .await
        .unwrap_or(Loaded::Fresh);
    match loaded {
        Loaded::Fresh => (HashMap::new(), true),
        Loaded::Ok(entries) => (
            entries
                .into_iter()
                .map(|e| (e.identity.clone(), e))
                .collect(),
            false,
        ),
        Loaded::Corrupt { reason, moved_to } => {
            tracing::error!(
                registry = %path.display(),
                moved_to = moved_to.as_ref().map(|p| p.display().to_string()),
                %reason,
                "Checkpoint registry is unreadable; moved it aside and starting without it per start_position."
            );
            (HashMap::new(), true)
        }
    }
}
