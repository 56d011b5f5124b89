//! Reading rounds: one batch per file with data, on a blocking thread;
//! truncation and copytruncate detection; timeouts of held partial lines and
//! unfinished multiline events; handing batches to the next stage.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use chrono::Utc;
use tokio::sync::mpsc;

use super::exclude::Exclude;
use super::fingerprint::{self, Fingerprint, Inode};
use super::line_event::LineOrigin;
use super::reader::{Line, LineReader, Stop};
use super::scan;
use super::tail::Tail;
use crate::error::StageError;
use crate::event::{Batch, Event};

/// What one blocking read brought back.
struct Round {
    reader: LineReader,
    /// The reader's resume position before this round.
    before: u64,
    /// Its file position before this round.
    read_before: u64,
    lines: Vec<Line>,
    stop: std::io::Result<Stop>,
    /// The file's first bytes and size *after* the read: if they still
    /// match, nothing read in this round came from replaced content.
    prefix: std::io::Result<Vec<u8>>,
    size: u64,
    modified: Option<SystemTime>,
}

impl Tail {
    /// Reads one batch from every file that has data. Returns whether any
    /// line was read.
    pub(super) async fn read_round(
        &mut self,
        out: &mpsc::Sender<Batch>,
    ) -> Result<bool, StageError> {
        let mut read_any = false;
        // Taken before reading: a write after this is either seen by this
        // round's read or named again for the next round.
        let changed = self.wake.take_changed();
        let mut index = 0;
        while index < self.files.open.len() {
            let file = &mut self.files.open[index];
            if !changed.is_empty()
                && (changed.contains(&file.path) || changed.contains(&file.opened))
            {
                file.changed = true;
            }
            let idle = file.at_eof && !file.changed && self.watching && !file.detached;
            if idle {
                index += 1;
                continue;
            }
            file.changed = false;
            let Some(reader) = file.reader.take() else {
                index += 1;
                continue;
            };
            let (max_lines, max_bytes) = (self.input.batch_events, self.input.batch_bytes);
            let round = tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let before = reader.position();
                let read_before = reader.read_position();
                let mut lines = Vec::new();
                let stop = reader.read_lines(&mut lines, max_lines, max_bytes);
                let meta = reader.file().metadata();
                let prefix = fingerprint::read_prefix(reader.file());
                Round {
                    before,
                    read_before,
                    lines,
                    stop,
                    prefix,
                    size: meta.as_ref().map_or(u64::MAX, |m| m.len()),
                    modified: meta.ok().and_then(|m| m.modified().ok()),
                    reader,
                }
            })
            .await
            .map_err(|e| StageError::Fatal(format!("file reader thread failed: {e}")))?;
            let file = &mut self.files.open[index];
            let grew = round.reader.read_position() > round.read_before;
            metrics::counter!("logpipe_bytes_in_total", "pipeline" => self.cx.pipeline.to_string(), "stage" => "input.file")
                .increment(round.reader.read_position().saturating_sub(round.read_before));
            let (stop, prefix) = match (round.stop, round.prefix) {
                (Ok(stop), Ok(prefix)) => (stop, prefix),
                (Err(e), _) | (_, Err(e)) => {
                    if let Some(suppressed) = self.read_warning.ready() {
                        tracing::warn!(path = %file.path.display(), error = %e, suppressed, "Read error; will retry.");
                    }
                    file.reader = Some(round.reader);
                    index += 1;
                    continue;
                }
            };
            let replaced = round.size < round.reader.read_position()
                || !file.fingerprint.matches_prefix(&prefix);
            if replaced {
                // Lines of this round may come from the new content: drop
                // them and resume from `before` in the copy, if any.
                if !self.truncated(index, round.before, out).await? {
                    index += 1;
                }
                read_any = true;
                continue;
            }
            let file = &mut self.files.open[index];
            if !file.fingerprint.is_complete() {
                self.grow_fingerprint(index, &prefix);
            }
            let file = &mut self.files.open[index];
            file.size = round.size;
            file.reader = Some(round.reader);
            file.at_eof = stop == Stop::Eof;
            if grew {
                file.last_growth = Instant::now();
            }
            if let (Some(age), Some(modified)) = (self.input.ignore_older, round.modified) {
                file.old = modified.elapsed().is_ok_and(|e| e >= age);
            }
            if !round.lines.is_empty() {
                read_any = true;
                let lines = self.join(index, round.lines);
                self.send(index, lines, out).await?;
                if self.cx.shutdown.stop.is_cancelled() {
                    return Ok(read_any);
                }
            }
            index += 1;
        }
        Ok(read_any)
    }

    /// Passes lines through the file's multiline joiner, if any.
    fn join(&mut self, index: usize, lines: Vec<Line>) -> Vec<Line> {
        let Some(rules) = self.input.multiline.clone() else {
            return lines;
        };
        let now = Instant::now();
        let joiner = &mut self.files.open[index].joiner;
        let mut events = Vec::with_capacity(lines.len());
        for line in lines {
            joiner.push(&rules, line, now, &mut events);
        }
        events
    }

    /// The file at `index` shrank or its first bytes changed. If another
    /// matched file has the old content (the copy of a copytruncate
    /// rotation, e.g. `access_log.1` for `access_log*`), reading goes on in
    /// it from `resume` on the same lane, so nothing is lost or read twice;
    /// the truncated file is then found anew by the next scan. Otherwise the
    /// file is dropped and read again from its start as a new file. Returns
    /// whether the file is still at `index`.
    async fn truncated(
        &mut self,
        index: usize,
        resume: u64,
        out: &mpsc::Sender<Batch>,
    ) -> Result<bool, StageError> {
        let file = &self.files.open[index];
        let fp = file.fingerprint;
        let patterns = self.input.patterns.clone();
        let exclude = self.input.exclude.clone();
        let max_line = self.input.max_line_bytes;
        let follow = self.input.follow_symlinks;
        // A followed file is no copy: it has its own lane and checkpoint.
        let followed: HashSet<Inode> = self.files.open.iter().map(|f| f.inode).collect();
        let copy = tokio::task::spawn_blocking(move || {
            find_copy(&patterns, &exclude, fp, &followed, resume, max_line, follow)
        })
        .await
        .ok()
        .flatten();
        let file = &mut self.files.open[index];
        match copy {
            Some((path, inode, reader)) => {
                tracing::info!(path = %file.path.display(), copy = %path.display(), offset = resume, "File was copied and truncated (copytruncate); finishing the copy, then reading the truncated file anew.");
                // Positions of batches acknowledged or in flight may lie
                // past a shorter copy's end; its checkpoint must not.
                file.clamp = (reader.position() < resume).then(|| reader.position());
                if let Some(entry) = self.files.known.get_mut(&file.identity) {
                    (entry.path, entry.dev, entry.ino) = (path.clone(), inode.dev, inode.ino);
                    entry.offset = file.clamp.map_or(entry.offset, |c| entry.offset.min(c));
                    self.files.dirty = true;
                }
                file.opened = path.clone();
                (file.path, file.inode) = (path, inode);
                file.reader = Some(reader);
                (file.at_eof, file.detached) = (false, false);
                file.last_growth = Instant::now();
                Ok(true)
            }
            None => {
                tracing::warn!(path = %file.path.display(), offset = resume, "File was truncated or replaced; reading it again from the start. Lines written after the last read and before the truncation are lost unless the rotated copy matches `paths`.");
                if let Some(line) = file.joiner.flush() {
                    self.send(index, vec![line], out).await?;
                }
                let file = self.files.open.remove(index);
                self.tracker.close_lane(file.lane);
                Ok(false)
            }
        }
    }

    fn grow_fingerprint(&mut self, index: usize, prefix: &[u8]) {
        let file = &mut self.files.open[index];
        let grown = Fingerprint::of(prefix);
        if grown.len > file.fingerprint.len {
            file.fingerprint = grown;
            if let Some(entry) = self.files.known.get_mut(&file.identity) {
                entry.fp_len = grown.len;
                entry.fp_hash = grown.to_hex();
                self.files.dirty = true;
            }
        }
    }

    /// Sends held partial lines and unfinished multiline events whose
    /// timeout passed.
    pub(super) async fn flush_expired(
        &mut self,
        out: &mpsc::Sender<Batch>,
    ) -> Result<(), StageError> {
        let now = Instant::now();
        let partial_timeout = self.input.partial_line_timeout;
        for index in 0..self.files.open.len() {
            let mut lines = Vec::new();
            let file = &mut self.files.open[index];
            if let Some(rules) = &self.input.multiline {
                lines.extend(file.joiner.flush_expired(rules, now));
            }
            let stale = file.at_eof && now.duration_since(file.last_growth) >= partial_timeout;
            let partial = if stale {
                file.reader.as_mut().and_then(LineReader::flush_partial)
            } else {
                None
            };
            if let Some(line) = partial {
                tracing::debug!(path = %file.path.display(), offset = line.offset, "Sending a last line that never got its newline.");
                lines.extend(self.join(index, vec![line]));
                // Nothing follows a partial line that timed out: the event
                // it may belong to is complete too.
                lines.extend(self.files.open[index].joiner.flush());
            }
            self.send(index, lines, out).await?;
        }
        Ok(())
    }

    /// Sends everything held back (the end of an `exit_after_eof` run).
    pub(super) async fn flush_all(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), StageError> {
        for index in 0..self.files.open.len() {
            let partial = self.files.open[index]
                .reader
                .as_mut()
                .and_then(LineReader::flush_partial);
            let mut lines = self.join(index, partial.into_iter().collect());
            lines.extend(self.files.open[index].joiner.flush());
            self.send(index, lines, out).await?;
        }
        Ok(())
    }

    /// Sends lines of one file as a batch, waiting while downstream is full
    /// (the backpressure that keeps the rest of the file on disk). A stop
    /// request while waiting sends nothing; those lines are read again on
    /// the next start. The batch is tracked only once its slot is reserved,
    /// so no token is ever dropped unsent.
    async fn send(
        &mut self,
        index: usize,
        lines: Vec<Line>,
        out: &mpsc::Sender<Batch>,
    ) -> Result<(), StageError> {
        let Some(last) = lines.last() else {
            return Ok(());
        };
        let position = last.end;
        let permit = tokio::select! {
            permit = out.reserve() => permit.map_err(|_| StageError::Fatal("the next stage stopped".into()))?,
            _ = self.cx.shutdown.stop.cancelled() => return Ok(()),
        };
        let file = &self.files.open[index];
        let path = file.path.to_string_lossy();
        let ids = self
            .files
            .known
            .get(&file.identity)
            .and_then(|e| e.filebeat_ids.as_ref());
        let source = LineOrigin::new(&self.input, &file.identity, ids, &path, Utc::now());
        let events: Vec<Event> = lines.into_iter().map(|l| source.event(l)).collect();
        let lane = file.lane;
        if let Some(entry) = self.files.known.get_mut(&file.identity) {
            entry.size = entry.size.max(position);
        }
        metrics::counter!("logpipe_events_in_total", "pipeline" => self.cx.pipeline.to_string(), "stage" => "input.file")
            .increment(events.len() as u64);
        let token = self.tracker.track(lane, position, events.len());
        permit.send(Batch::new(events, token));
        Ok(())
    }
}

/// Finds a matched file not `followed` (which includes the truncated one)
/// that starts with the content `fp` was taken of, opened and positioned at
/// `resume` (or its end).
fn find_copy(
    patterns: &[String],
    exclude: &[Exclude],
    fp: Fingerprint,
    followed: &HashSet<Inode>,
    resume: u64,
    max_line: usize,
    follow_symlinks: bool,
) -> Option<(PathBuf, Inode, LineReader)> {
    scan::find(patterns, exclude, follow_symlinks)
        .candidates
        .into_iter()
        .filter(|c| !followed.contains(&c.inode))
        .find_map(|c| {
            let file = scan::open_regular(&c.open).ok()?;
            let prefix = fingerprint::read_prefix(&file).ok()?;
            if !fp.matches_prefix(&prefix) {
                return None;
            }
            // A copy shorter than `resume`: logrotate copied, the writer
            // appended and logpipe read that before the truncation. The
            // copy holds nothing unread then; it is taken over at its end.
            let reader = LineReader::new(file, resume.min(c.size), max_line).ok()?;
            Some((c.path, c.inode, reader))
        })
}
