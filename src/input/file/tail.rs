//! The tail loop of one file input: when to scan, read, settle
//! acknowledgements into checkpoints, save them, and release files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use tokio::sync::mpsc;

use super::config::FileInput;
use super::files::Files;
use super::registry::{Entry, Registry};
use super::scan::Discovery;
use super::watch::{self, Wake};
use crate::ack::AckTracker;
use crate::error::StageError;
use crate::event::Batch;
use crate::shutdown::RunCx;
use crate::telemetry::Throttle;

/// How often acknowledged positions are written to the registry.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Tail {
    pub input: FileInput,
    pub cx: RunCx,
    pub tracker: AckTracker<u64>,
    pub files: Files,
    discovery: Discovery,
    registry: Option<Registry>,
    last_save: Instant,
    pub read_warning: Throttle,
    save_warning: Throttle,
    /// The last checkpoint write failed (health is degraded until one works).
    save_failing: bool,
    pub wake: Arc<Wake>,
    /// inotify watches every pattern's directory: files at their end wait
    /// for it to name them. Otherwise every file is polled.
    pub watching: bool,
    progress: Progress,
}

/// Catch-up reporting: bytes behind per file as metrics, and a log line
/// every few seconds while a start (or a backfill) works through a backlog.
pub(super) struct Progress {
    last_report: Instant,
    catching_up: bool,
}

/// How often progress is logged while behind.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Less than this behind counts as caught up (one batch of lines or so).
const CAUGHT_UP_BYTES: u64 = 1024 * 1024;

impl Tail {
    /// `first_start`: there was no registry to load (or it was corrupt),
    /// so `start_position` applies to the files found by the first scan.
    pub fn new(
        input: FileInput,
        cx: RunCx,
        known: HashMap<String, Entry>,
        registry: Option<Registry>,
        first_start: bool,
    ) -> Self {
        let tracker = AckTracker::new().counting(Arc::clone(cx.books.ledger()));
        Tail {
            input,
            cx,
            tracker,
            files: Files::new(known),
            discovery: Discovery::new(first_start),
            registry,
            last_save: Instant::now(),
            read_warning: Throttle::warnings(),
            save_warning: Throttle::warnings(),
            save_failing: false,
            wake: Arc::new(Wake::default()),
            watching: false,
            progress: Progress {
                last_report: Instant::now(),
                catching_up: false,
            },
        }
    }

    pub async fn follow(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), StageError> {
        let stop = self.cx.shutdown.stop.clone();
        // Kept alive for as long as the loop runs; dropping it stops watching.
        let _watcher = if self.input.exit_after_eof {
            None
        } else {
            watch::watch(&self.input.patterns, Arc::clone(&self.wake))
        };
        self.watching = _watcher.is_some();
        let mut next_scan = Instant::now();
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            let due = Instant::now() >= next_scan;
            if due || self.wake.rescan.swap(false, Ordering::AcqRel) {
                self.scan().await;
                next_scan = Instant::now() + self.input.scan_interval;
                if !due {
                    // inotify asked for this scan. A directory it reported
                    // new is watched only from when the watcher saw it, so
                    // a file created in it just before gives no event: look
                    // once more shortly.
                    next_scan = next_scan.min(Instant::now() + self.input.poll_interval);
                }
                // A possible copy waiting for close_inactive is looked at again
                // when its wait ends, however long the scan interval.
                if let Some(due) = self.discovery.next_due(self.input.close_inactive) {
                    next_scan = next_scan.min(due.max(Instant::now()));
                }
            }
            let read_any = self.read_round(out).await?;
            if stop.is_cancelled() {
                return Ok(());
            }
            self.flush_expired(out).await?;
            self.settle();
            if self.tracker.has_failed() {
                return Err(StageError::Undelivered);
            }
            self.save_if_due().await;
            if read_any {
                continue;
            }
            if self.input.exit_after_eof
                && self.discovery.waiting() == 0
                && self.files.open.iter().all(|f| f.at_eof)
            {
                self.flush_all(out).await?;
                tracing::info!(
                    files = self.files.open.len(),
                    "All files read to their end; stopping (exit_after_eof)."
                );
                return Ok(());
            }
            let wait = self.input.poll_interval.min(watch::until(next_scan));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = self.tracker.recv() => {}
                _ = self.wake.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Looks for new, renamed and vanished files (see [`Discovery::scan`]),
    /// and writes new identities down before any of their lines leave.
    async fn scan(&mut self) {
        let new_identities = self
            .discovery
            .scan(&self.input, &mut self.files, &mut self.tracker)
            .await;
        if new_identities {
            // Origin ids derive from the identity, and the identity from the
            // bytes present at first sight: write it down before the first
            // event leaves, so that a crash before the next periodic save
            // cannot give the same lines other ids (and duplicates) when a
            // short file is identified again after it grew. Once per scan,
            // not per file: a start with thousands of files would write the
            // whole registry thousands of times.
            let _ = self.save().await;
        }
    }

    /// Stops reading: waits for what is in flight (until the drain deadline)
    /// and writes the final checkpoints. An error when they could not be
    /// written: the next start would repeat what was delivered since the last
    /// good write, and the exit status must say that something went wrong.
    pub async fn finish(&mut self) -> Result<(), StageError> {
        let abort = self.cx.shutdown.abort.clone();
        while self.tracker.in_flight() > 0 && !self.tracker.has_failed() {
            tokio::select! {
                _ = self.tracker.recv() => self.settle(),
                _ = abort.cancelled() => break,
            }
        }
        self.tracker.drain();
        self.settle();
        if self.tracker.in_flight() > 0 {
            tracing::warn!(
                batches = self.tracker.in_flight(),
                "Stopping with undelivered batches; their lines will be read again on the next start."
            );
            crate::shutdown::record_undelivered(
                &self.cx.pipeline,
                "input.file",
                self.tracker.in_flight(),
            );
        }
        self.save().await.map_err(|(path, source)| {
            StageError::io("cannot write the final checkpoints to", path, source)
        })
    }

    /// Applies acknowledgements to the registry entries and releases files
    /// that are done.
    pub fn settle(&mut self) {
        self.tracker.drain();
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        for (lane, offset) in self.tracker.take_progress() {
            let Some(file) = self.files.open.iter().find(|f| f.lane == lane) else {
                continue;
            };
            if let Some(entry) = self.files.known.get_mut(&file.identity) {
                entry.offset = file.clamp.map_or(offset, |c| offset.min(c));
                entry.updated.clone_from(&now);
                self.files.dirty = true;
            }
        }
        self.release();
    }

    /// Releases files that are drained, fully acknowledged and idle: for
    /// `close_inactive`, or at once when they are old (`ignore_older`) or
    /// when other files wait for a slot. Renamed and deleted files always
    /// get the full `close_inactive`, since their writer may still append.
    fn release(&mut self) {
        let close_inactive = self.input.close_inactive;
        let others_wait = self.discovery.waiting() > 0;
        let before = self.files.open.len();
        let tracker = &mut self.tracker;
        self.files.open.retain(|f| {
            if !f.drained() || tracker.lane_in_flight(f.lane) > 0 {
                return true;
            }
            let idle = f.last_growth.elapsed() >= close_inactive;
            let done = idle || (!f.detached && (f.old || others_wait));
            if done {
                if f.detached {
                    tracing::info!(path = %f.path.display(), "Released a rotated or deleted file after reading it to its end.");
                } else {
                    tracing::debug!(path = %f.path.display(), "Released an idle file; it is opened again when it grows.");
                }
                tracker.close_lane(f.lane);
            }
            !done
        });
        if others_wait && self.files.open.len() < before {
            // A slot is free: the next file waiting for one is opened now,
            // not at the next periodic scan.
            self.wake.rescan.store(true, Ordering::Release);
        }
    }

    /// Updates the file gauges and logs catch-up progress, every few seconds.
    fn report_progress(&mut self) {
        if self.progress.last_report.elapsed() < PROGRESS_EVERY && self.progress.catching_up {
            return;
        }
        if self.progress.last_report.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.progress.last_report = Instant::now();
        let pipeline = self.cx.pipeline.to_string();
        let mut behind_total = 0u64;
        for file in &mut self.files.open {
            let read = file.reader.as_ref().map_or(0, |r| r.read_position());
            let behind = file.size.saturating_sub(read);
            behind_total += behind;
            // Only what changed: thousands of idle files, every second.
            if file.reported_behind != Some(behind) {
                file.reported_behind = Some(behind);
                metrics::gauge!(
                    "logpipe_file_bytes_behind",
                    "pipeline" => pipeline.clone(),
                    "path" => file.path.display().to_string()
                )
                .set(behind as f64);
            }
        }
        metrics::gauge!("logpipe_open_files", "pipeline" => pipeline)
            .set(self.files.open.len() as f64);
        if behind_total >= CAUGHT_UP_BYTES {
            self.progress.catching_up = true;
            tracing::info!(
                files = self.files.open.len(),
                waiting = self.discovery.waiting(),
                bytes_behind = behind_total,
                "Catching up with existing files."
            );
        } else if self.progress.catching_up {
            self.progress.catching_up = false;
            tracing::info!(files = self.files.open.len(), "Caught up.");
        }
    }

    async fn save_if_due(&mut self) {
        self.report_progress();
        if self.files.dirty && self.last_save.elapsed() >= SAVE_INTERVAL {
            // Failures are reported (log, health) and retried by the next
            // due save; reading goes on, since positions stay in memory.
            let _ = self.save().await;
        }
    }

    /// Writes the checkpoints if anything changed. A failure (read-only
    /// state directory, disk full, out of file descriptors) turns health
    /// degraded and is logged, throttled; the next success clears it.
    pub async fn save(&mut self) -> Result<(), (PathBuf, std::io::Error)> {
        let Some(reg) = self.registry.clone() else {
            return Ok(());
        };
        if !self.files.dirty {
            return Ok(());
        }
        let entries: Vec<Entry> = self.files.known.values().cloned().collect();
        let path = reg.path().to_path_buf();
        let written = tokio::task::spawn_blocking(move || reg.save(&entries))
            .await
            .unwrap_or_else(|e| {
                Err(std::io::Error::other(format!(
                    "checkpoint writer failed: {e}"
                )))
            });
        self.last_save = Instant::now();
        let health_key = format!("input.file[{}]", self.input.id);
        match written {
            Ok(()) => {
                self.files.dirty = false;
                if std::mem::take(&mut self.save_failing) {
                    crate::monitor::health::ended(&self.cx.pipeline, &health_key);
                    tracing::info!(registry = %path.display(), "Checkpoints are written again.");
                    self.save_warning.reset();
                }
                Ok(())
            }
            Err(e) => {
                self.save_failing = true;
                crate::monitor::health::degraded(
                    &self.cx.pipeline,
                    &health_key,
                    format!("cannot write checkpoints to {}: {e}", path.display()),
                );
                metrics::counter!("logpipe_checkpoint_write_errors_total", "pipeline" => self.cx.pipeline.to_string(), "stage" => "input.file")
                    .increment(1);
                if let Some(suppressed) = self.save_warning.ready() {
                    tracing::error!(registry = %path.display(), error = %e, suppressed, "Cannot write checkpoints; reading goes on and the write is retried. A restart now would read again what was delivered since the last good write.");
                }
                Err((path, e))
            }
        }
    }
}
