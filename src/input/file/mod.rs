//! The `file` input: tails files matched by globs, one event per line, with
//! checkpoints that only move past lines acknowledged downstream.
//!
//! Each followed file is one lane of an [`AckTracker`]; its registry entry
//! (keyed by content fingerprint, see [`fingerprint`]) stores the offset just
//! past the last acknowledged line. Reading happens on blocking threads in
//! large chunks; when downstream is slow the `send` waits, so the file on disk
//! is the buffer.

pub mod fingerprint;
pub mod reader;
pub mod registry;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use toml::Spanned;

use crate::ack::{AckTracker, LaneId};
use crate::config::types::{Seconds, StringList};
use crate::config::Cx;
use crate::error::StageError;
use crate::event::{Batch, Event, ID};
use crate::shutdown::StageCx;
use fingerprint::{Fingerprint, Inode};
use reader::{Line, LineReader, Stop};
use registry::{Entry, Loaded, Registry};

/// Where to start in files that are present at the first start, with no
/// checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    Beginning,
    End,
}

/// `[[input]] type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths or glob patterns of the files to follow; relative ones resolve
    /// against the pipeline file's directory.
    pub paths: Spanned<StringList>,
    /// Glob patterns of paths to leave out.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Names this input's checkpoint file; default: derived from `paths`.
    pub id: Option<String>,
    /// Tags added to every event, e.g. `["httpd_access"]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Extra fields, placed under `fields` as Filebeat does.
    pub fields: Option<Map<String, Value>>,
    /// `beginning` (default) or `end`, for files present at the first start.
    /// Files that appear later are always read from the beginning.
    pub start_position: Option<StartPosition>,
    /// Stop when every file is read to its end and delivered (one-shot runs,
    /// the quickstart). Default false: keep tailing.
    #[serde(default)]
    pub exit_after_eof: bool,
    /// Keep checkpoints in the state directory (default true). Without them
    /// every run starts per `start_position`.
    pub checkpoint: Option<bool>,
    /// Longer lines are truncated to this many bytes and tagged `_truncated`
    /// (default 512 KiB, so an event stays under Kafka's 1 MB default).
    pub max_line_bytes: Option<usize>,
    /// Events per batch (default 1024).
    pub batch_events: Option<usize>,
    /// How often to look for new files matching `paths` (default 1s).
    pub scan_interval: Option<Seconds>,
    /// How long to wait at end of file before reading again (default 250ms).
    pub poll_interval: Option<Seconds>,
}

impl Config {
    pub fn validate(self, cx: &mut Cx<'_>) -> Option<FileInput> {
        let mut ok = true;
        if self.paths.get_ref().0.is_empty() {
            cx.error(
                &self.paths.span(),
                "`paths` must name at least one file or glob",
            );
            ok = false;
        }
        let mut patterns = Vec::new();
        for path in &self.paths.get_ref().0 {
            let resolved = cx.path(path);
            let text = resolved.to_string_lossy().into_owned();
            if let Err(e) = glob::Pattern::new(&text) {
                cx.error(&self.paths.span(), format!("invalid glob `{path}`: {e}"));
                ok = false;
            }
            patterns.push(text);
        }
        let mut exclude = Vec::new();
        for pattern in &self.exclude {
            let resolved = cx.path(pattern.get_ref());
            match glob::Pattern::new(&resolved.to_string_lossy()) {
                Ok(p) => exclude.push(p),
                Err(e) => {
                    cx.error(&pattern.span(), format!("invalid glob: {e}"));
                    ok = false;
                }
            }
        }
        let max_line_bytes = self.max_line_bytes.unwrap_or(512 * 1024);
        let batch_events = self.batch_events.unwrap_or(1024);
        if max_line_bytes == 0 || batch_events == 0 {
            cx.error(
                &self.paths.span(),
                "max_line_bytes and batch_events must be positive",
            );
            ok = false;
        }
        ok.then(|| FileInput {
            id: self.id.unwrap_or_else(|| {
                let joined = self.paths.get_ref().0.join("\n");
                format!(
                    "file-{:016x}",
                    xxhash_rust::xxh3::xxh3_64(joined.as_bytes())
                )
            }),
            patterns,
            exclude,
            tags: self.tags,
            fields: self.fields,
            start_position: self.start_position.unwrap_or(StartPosition::Beginning),
            exit_after_eof: self.exit_after_eof,
            checkpoint: self.checkpoint.unwrap_or(true),
            max_line_bytes,
            batch_events,
            batch_bytes: 4 * 1024 * 1024,
            scan_interval: self.scan_interval.map_or(Duration::from_secs(1), |s| s.0),
            poll_interval: self
                .poll_interval
                .map_or(Duration::from_millis(250), |s| s.0),
        })
    }
}

/// A validated file input.
#[derive(Debug, Clone)]
pub struct FileInput {
    pub id: String,
    pub patterns: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    pub tags: Vec<String>,
    pub fields: Option<Map<String, Value>>,
    pub start_position: StartPosition,
    pub exit_after_eof: bool,
    pub checkpoint: bool,
    pub max_line_bytes: usize,
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub scan_interval: Duration,
    pub poll_interval: Duration,
}

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
        let known = match &registry {
            Some(reg) => load_registry(reg.clone()).await,
            None => HashMap::new(),
        };
        let mut tail = Tail {
            input: self,
            cx,
            tracker: AckTracker::new(),
            files: Vec::new(),
            known,
            registry,
            dirty: false,
            last_save: Instant::now(),
            first_scan: true,
        };
        let result = tail.follow(&out).await;
        drop(out);
        tail.finish().await;
        result
    }
}

async fn load_registry(reg: Registry) -> HashMap<String, Entry> {
    let path = reg.path().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || reg.load())
        .await
        .unwrap_or(Loaded::Fresh);
    match loaded {
        Loaded::Fresh => HashMap::new(),
        Loaded::Ok(entries) => entries
            .into_iter()
            .map(|e| (e.identity.clone(), e))
            .collect(),
        Loaded::Corrupt { reason, moved_to } => {
            tracing::error!(
                registry = %path.display(),
                moved_to = moved_to.as_ref().map(|p| p.display().to_string()),
                %reason,
                "Checkpoint registry is unreadable; starting without it per start_position."
            );
            HashMap::new()
        }
    }
}

/// A file being followed.
struct Tracked {
    path: PathBuf,
    inode: Inode,
    identity: String,
    fingerprint: Fingerprint,
    lane: LaneId,
    reader: Option<LineReader>,
    at_eof: bool,
    /// Its path now names another file, or none: read to the end, then release.
    detached: bool,
}

struct Candidate {
    path: PathBuf,
    inode: Inode,
    size: u64,
}

struct Tail {
    input: FileInput,
    cx: StageCx,
    tracker: AckTracker<u64>,
    files: Vec<Tracked>,
    known: HashMap<String, Entry>,
    registry: Option<Registry>,
    dirty: bool,
    last_save: Instant,
    first_scan: bool,
}

impl Tail {
    async fn follow(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), StageError> {
        let stop = self.cx.shutdown.stop.clone();
        let mut next_scan = Instant::now();
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            if Instant::now() >= next_scan {
                self.scan().await;
                next_scan = Instant::now() + self.input.scan_interval;
            }
            let read_any = self.read_round(out).await?;
            if stop.is_cancelled() {
                return Ok(());
            }
            self.settle();
            if self.tracker.has_failed() {
                return Err(StageError::Undelivered);
            }
            self.save_if_due().await;
            if read_any {
                continue;
            }
            if self.input.exit_after_eof && self.files.iter().all(|f| f.at_eof) {
                self.flush_partials(out).await;
                tracing::info!(
                    files = self.files.len(),
                    "All files read to their end; stopping (exit_after_eof)."
                );
                return Ok(());
            }
            let wait = self
                .input
                .poll_interval
                .min(next_scan.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = self.tracker.recv() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Stops reading: waits for what is in flight (until the drain deadline)
    /// and writes the final checkpoints.
    async fn finish(&mut self) {
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
        }
        self.save().await;
    }

    /// Applies acknowledgements to the registry entries.
    fn settle(&mut self) {
        self.tracker.drain();
        for (lane, offset) in self.tracker.take_progress() {
            let Some(file) = self.files.iter().find(|f| f.lane == lane) else {
                continue;
            };
            if let Some(entry) = self.known.get_mut(&file.identity) {
                entry.offset = offset;
                entry.updated = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
                self.dirty = true;
            }
        }
        // Release detached files that are drained and fully acknowledged.
        let tracker = &mut self.tracker;
        self.files.retain(|f| {
            let done = f.detached && f.at_eof && tracker.lane_in_flight(f.lane) == 0;
            if done {
                tracing::info!(path = %f.path.display(), "Released a rotated or deleted file after reading it to its end.");
                tracker.close_lane(f.lane);
            }
            !done
        });
    }

    async fn save_if_due(&mut self) {
        if self.dirty && self.last_save.elapsed() >= Duration::from_secs(1) {
            self.save().await;
        }
    }

    async fn save(&mut self) {
        let Some(reg) = self.registry.clone() else {
            return;
        };
        if !self.dirty {
            return;
        }
        let entries: Vec<Entry> = self.known.values().cloned().collect();
        let path = reg.path().to_path_buf();
        match tokio::task::spawn_blocking(move || reg.save(&entries)).await {
            Ok(Ok(())) => self.dirty = false,
            Ok(Err(e)) => {
                tracing::error!(registry = %path.display(), error = %e, "Cannot write checkpoints; will retry.")
            }
            Err(e) => tracing::error!(error = %e, "Checkpoint writer failed."),
        }
        self.last_save = Instant::now();
    }

    /// Finds files matching the patterns and starts following new ones.
    async fn scan(&mut self) {
        let patterns = self.input.patterns.clone();
        let exclude = self.input.exclude.clone();
        let candidates = tokio::task::spawn_blocking(move || find(&patterns, &exclude))
            .await
            .unwrap_or_default();
        let first = std::mem::replace(&mut self.first_scan, false);
        for file in &mut self.files {
            let still_there = candidates
                .iter()
                .any(|c| c.inode == file.inode && c.path == file.path);
            if !still_there && !file.detached {
                match candidates.iter().find(|c| c.inode == file.inode) {
                    Some(moved) => file.path = moved.path.clone(),
                    None => file.detached = true,
                }
            }
        }
        for candidate in candidates {
            if self.files.iter().any(|f| f.inode == candidate.inode) || candidate.size == 0 {
                continue;
            }
            self.open(candidate, first).await;
        }
    }

    async fn open(&mut self, candidate: Candidate, first_scan: bool) {
        let path = candidate.path.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&candidate.path)?;
            let meta = file.metadata()?;
            let prefix = fingerprint::read_prefix(&file)?;
            Ok::<_, std::io::Error>((file, meta, prefix))
        })
        .await;
        let (file, meta, prefix) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "Cannot open file; will try again.");
                return;
            }
            Err(_) => return,
        };
        if prefix.is_empty() {
            return;
        }
        let size = meta.len();
        let known = self
            .known
            .values()
            .filter(|e| e.fingerprint().is_some_and(|fp| fp.matches_prefix(&prefix)))
            .max_by_key(|e| e.fp_len)
            .cloned();
        let fp = Fingerprint::of(&prefix);
        let (identity, offset) = match known {
            Some(entry) if entry.offset <= size => {
                tracing::info!(path = %path.display(), offset = entry.offset, "Resuming file from its checkpoint.");
                (entry.identity, entry.offset)
            }
            Some(entry) => {
                tracing::warn!(path = %path.display(), checkpoint = entry.offset, size, "File is shorter than its checkpoint (truncated); reading it from the start.");
                (format!("{}-{}", fp.to_hex(), Utc::now().timestamp()), 0)
            }
            None => {
                let offset = match (first_scan, self.input.start_position) {
                    (true, StartPosition::End) => size,
                    _ => 0,
                };
                tracing::info!(path = %path.display(), offset, "Following new file.");
                (fp.to_hex(), offset)
            }
        };
        let inode = Inode::of(&meta);
        let entry = self.known.entry(identity.clone()).or_insert_with(|| Entry {
            identity: identity.clone(),
            fp_len: fp.len,
            fp_hash: fp.to_hex(),
            path: path.clone(),
            dev: inode.dev,
            ino: inode.ino,
            offset,
            size,
            updated: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        entry.path = path.clone();
        entry.dev = inode.dev;
        entry.ino = inode.ino;
        entry.offset = offset;
        if fp.len > entry.fp_len {
            entry.fp_len = fp.len;
            entry.fp_hash = fp.to_hex();
        }
        self.dirty = true;
        let max_line = self.input.max_line_bytes;
        let reader = match LineReader::new(file, offset, max_line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Cannot seek in file; will try again.");
                return;
            }
        };
        let lane = self.tracker.open_lane();
        self.files.push(Tracked {
            path,
            inode,
            identity,
            fingerprint: fp,
            lane,
            reader: Some(reader),
            at_eof: false,
            detached: false,
        });
    }

    /// Reads one batch from every file that has data. Returns whether any
    /// line was read.
    async fn read_round(&mut self, out: &mpsc::Sender<Batch>) -> Result<bool, StageError> {
        let mut read_any = false;
        for index in 0..self.files.len() {
            let Some(reader) = self.files[index].reader.take() else {
                continue;
            };
            let max_lines = self.input.batch_events;
            let max_bytes = self.input.batch_bytes;
            let needs_fp = !self.files[index].fingerprint.is_complete();
            let result = tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let mut lines = Vec::new();
                let stop = reader.read_lines(&mut lines, max_lines, max_bytes);
                let size = reader.file().metadata().map(|m| m.len());
                let prefix = if needs_fp {
                    fingerprint::read_prefix(reader.file()).ok()
                } else {
                    None
                };
                (reader, lines, stop, size, prefix)
            })
            .await;
            let Ok((reader, lines, stop, size, prefix)) = result else {
                return Err(StageError::Fatal("file reader thread panicked".into()));
            };
            let file = &mut self.files[index];
            let stop = match stop {
                Ok(stop) => stop,
                Err(e) => {
                    tracing::warn!(path = %file.path.display(), error = %e, "Read error; will retry.");
                    file.reader = Some(reader);
                    continue;
                }
            };
            if let Some(prefix) = prefix {
                self.grow_fingerprint(index, &prefix);
            }
            let file = &mut self.files[index];
            file.at_eof = stop == Stop::Eof;
            if let Ok(size) = size {
                if size < reader.read_position() {
                    tracing::warn!(path = %file.path.display(), size, offset = reader.read_position(), "File was truncated; reading it again from the start.");
                    self.tracker.close_lane(file.lane);
                    self.files.remove(index);
                    return Ok(true);
                }
            }
            file.reader = Some(reader);
            if !lines.is_empty() {
                read_any = true;
                self.send(index, lines, out).await?;
                if self.cx.shutdown.stop.is_cancelled() {
                    return Ok(read_any);
                }
            }
        }
        Ok(read_any)
    }

    fn grow_fingerprint(&mut self, index: usize, prefix: &[u8]) {
        let file = &mut self.files[index];
        if !file.fingerprint.matches_prefix(prefix) {
            return;
        }
        let grown = Fingerprint::of(prefix);
        if grown.len > file.fingerprint.len {
            file.fingerprint = grown;
            if let Some(entry) = self.known.get_mut(&file.identity) {
                entry.fp_len = grown.len;
                entry.fp_hash = grown.to_hex();
                self.dirty = true;
            }
        }
    }

    async fn flush_partials(&mut self, out: &mpsc::Sender<Batch>) {
        for index in 0..self.files.len() {
            let line = self.files[index]
                .reader
                .as_mut()
                .and_then(LineReader::flush_partial);
            if let Some(line) = line {
                let _ = self.send(index, vec![line], out).await;
            }
        }
    }

    /// Sends lines of one file as a batch. Waits while downstream is full;
    /// a stop request while waiting drops the batch unacknowledged, so its
    /// lines are read again on the next start.
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
        let read_time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let file = &self.files[index];
        let (identity, lane) = (file.identity.clone(), file.lane);
        let path = file.path.to_string_lossy().into_owned();
        let events: Vec<Event> = lines
            .into_iter()
            .map(|line| self.event(&identity, &path, &read_time, line))
            .collect();
        if let Some(entry) = self.known.get_mut(&identity) {
            entry.size = entry.size.max(position);
        }
        let token = self.tracker.track(lane, position);
        let batch = Batch::new(events, token);
        tokio::select! {
            sent = out.send(batch) => sent.map_err(|_| StageError::Fatal("the next stage stopped".into())),
            _ = self.cx.shutdown.stop.cancelled() => Ok(()),
        }
    }

    fn event(&self, identity: &str, path: &str, read_time: &str, line: Line) -> Event {
        let host = crate::host::name();
        let mut fields = Map::with_capacity(10);
        fields.insert("@timestamp".into(), Value::String(read_time.to_owned()));
        fields.insert("message".into(), Value::String(line.text));
        let mut tags: Vec<Value> = self
            .input
            .tags
            .iter()
            .map(|t| Value::String(t.clone()))
            .collect();
        let mut flags = Vec::new();
        if line.truncated {
            tags.push(Value::String("_truncated".into()));
            flags.push(Value::String("truncated".into()));
        }
        if line.invalid_utf8 {
            tags.push(Value::String("_invalid_utf8".into()));
        }
        if !tags.is_empty() {
            fields.insert("tags".into(), Value::Array(tags));
        }
        if let Some(extra) = &self.input.fields {
            fields.insert("fields".into(), Value::Object(extra.clone()));
        }
        fields.insert(
            "host".into(),
            object([("name", Value::String(host.to_owned()))]),
        );
        let mut log = Map::new();
        log.insert(
            "file".into(),
            object([("path", Value::String(path.to_owned()))]),
        );
        log.insert("offset".into(), Value::from(line.offset));
        if !flags.is_empty() {
            log.insert("flags".into(), Value::Array(flags));
        }
        fields.insert("log".into(), Value::Object(log));
        fields.insert(
            "input".into(),
            object([("type", Value::String("log".into()))]),
        );
        fields.insert(
            "event".into(),
            object([(
                "timezone",
                Value::String(crate::host::timezone().to_owned()),
            )]),
        );
        fields.insert(
            "agent".into(),
            object([
                ("type", Value::String("logpipe".into())),
                ("version", Value::String(env!("CARGO_PKG_VERSION").into())),
            ]),
        );
        let mut metadata = Map::new();
        metadata.insert(
            ID.into(),
            Value::String(fingerprint::origin_id(host, identity, line.offset)),
        );
        Event { fields, metadata }
    }
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Expands the patterns into regular files, minus exclusions.
fn find(patterns: &[String], exclude: &[glob::Pattern]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for pattern in patterns {
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        for path in paths.flatten() {
            if exclude.iter().any(|p| p.matches_path(&path)) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || out.iter().any(|c| c.path == path) {
                continue;
            }
            out.push(Candidate {
                inode: Inode::of(&meta),
                size: meta.len(),
                path,
            });
        }
    }
    out
}
