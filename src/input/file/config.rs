//! The settings of a `file` input as written in a pipeline file, and their
//! validation into a [`FileInput`].

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::exclude::Exclude;
use super::multiline::{Match, Multiline};
use crate::config::types::{Seconds, StringList};
use crate::config::ConfigCx;

/// Where to start in files that are present at the first start, with no
/// checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    Beginning,
    End,
}

/// Where to read files from when the checkpoint registry turned out to be
/// corrupt (it was moved aside, so which lines were shipped is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCorruptCheckpoint {
    /// From their beginning: lines may be shipped twice, never skipped
    /// (origin ids make the repeats duplicates that Elasticsearch refuses).
    Beginning,
    /// As at a first start, per `start_position` (with `end`, lines written
    /// since the last good checkpoint are skipped).
    StartPosition,
}

/// `[[input]] type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths or glob patterns of the files to follow; relative ones resolve
    /// against the pipeline file's directory.
    pub paths: Spanned<StringList>,
    /// Glob patterns of files to leave out: without a slash, matched
    /// against the file's base name (`*.gz`); with one, against its path
    /// (relative ones resolve as `paths` do).
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
    /// A checkpoint registry that cannot be parsed is moved aside; then the
    /// files are read from their `beginning` (default), or per
    /// `start_position` when this says so.
    pub on_corrupt_checkpoint: Option<OnCorruptCheckpoint>,
    /// Follow symbolic links that match `paths` (default false, as in
    /// Filebeat). When true, a link is read only if its target matches
    /// `paths` too, so a link cannot reach files outside the log directories.
    #[serde(default)]
    pub follow_symlinks: bool,
    /// Longer lines are truncated to this many bytes and tagged `_truncated`
    /// (default 512 KiB, so an event stays under Kafka's 1 MB default).
    /// Also caps the size of a multiline event.
    pub max_line_bytes: Option<Spanned<usize>>,
    /// Events per batch (default 1024).
    pub batch_events: Option<Spanned<usize>>,
    /// Bytes of log text per batch (default 1 MiB). With the pipeline's
    /// `channel_capacity` it bounds the memory this input can fill.
    pub batch_bytes: Option<Spanned<usize>>,
    /// How often to look at every path matching `paths` (default 10s, as
    /// Filebeat's `scan_frequency`). inotify reports new, renamed and
    /// written files at once; this scan is the fallback for when it
    /// overflows or cannot see a change (network filesystems). Without
    /// inotify, files are polled every `poll_interval` and new ones are found
    /// by this scan.
    pub scan_interval: Option<Seconds>,
    /// How long to wait at end of file before reading again (default 250ms)
    /// when inotify is not available; with it, a file at its end is read
    /// again when inotify reports a write (or a scan sees it grew).
    pub poll_interval: Option<Seconds>,
    /// A last line without its newline is held back this long (default 1m)
    /// and then sent as it is: writers add the newline almost at once, so
    /// a longer wait means the line will not be finished.
    pub partial_line_timeout: Option<Seconds>,
    /// Release the handle of a file that was read to its end and did not
    /// change for this long (default 5m). A renamed or deleted file is read
    /// until it stays unchanged this long too, since Apache writes to the
    /// renamed file until it is reloaded. A released file is opened again
    /// when it grows.
    pub close_inactive: Option<Seconds>,
    /// A file not modified for this long is released as soon as it is read
    /// to its end, instead of after `close_inactive`, and is opened again
    /// only when it grows (default: off). Unlike Filebeat, a file with
    /// unread bytes is always read, however old.
    pub ignore_older: Option<Seconds>,
    /// Forget the checkpoint of a file that is no longer found under any
    /// path of the input (default true), so the registry does not grow
    /// forever with rotated-away files.
    pub clean_removed: Option<bool>,
    /// At most this many files open at once (default 1024). Files over the
    /// cap wait their turn (with a warning); none is skipped.
    pub max_open_files: Option<Spanned<usize>>,
    /// Joins lines into one event (stack traces, multi-line records).
    pub multiline: Option<MultilineConfig>,
}

/// `multiline = { pattern = "^\\s", match = "previous" }`, with Filebeat's
/// and Logstash's meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regular expression tested against each line.
    pub pattern: Spanned<String>,
    /// Invert the test: lines that do *not* match the pattern are the
    /// continuation lines (default false).
    #[serde(default)]
    pub negate: bool,
    /// `previous` (default): a matching line belongs to the event before
    /// it. `next`: a matching line belongs to the event after it.
    #[serde(rename = "match")]
    pub match_: Option<Match>,
    /// Lines kept per event (default 500); further lines of the same event
    /// are dropped and the event is tagged `_truncated`.
    pub max_lines: Option<Spanned<usize>>,
    /// An unfinished event is sent after this long without a new line
    /// (default 5s).
    pub timeout: Option<Seconds>,
}

/// A validated file input.
#[derive(Debug, Clone)]
pub struct FileInput {
    pub id: String,
    pub patterns: Vec<String>,
    pub exclude: Vec<Exclude>,
    pub tags: Vec<String>,
    pub fields: Option<crate::event::Map>,
    pub start_position: StartPosition,
    pub exit_after_eof: bool,
    pub checkpoint: bool,
    pub on_corrupt_checkpoint: OnCorruptCheckpoint,
    pub follow_symlinks: bool,
    pub max_line_bytes: usize,
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub scan_interval: Duration,
    pub poll_interval: Duration,
    pub partial_line_timeout: Duration,
    pub close_inactive: Duration,
    pub ignore_older: Option<Duration>,
    pub clean_removed: bool,
    pub max_open_files: usize,
    pub multiline: Option<Arc<Multiline>>,
}

fn secs(value: Option<Seconds>, default: Duration) -> Duration {
    value.map_or(default, |s| s.0)
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<FileInput> {
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
            let resolve = |p: &str| cx.path(p).to_string_lossy().into_owned();
            match Exclude::new(pattern.get_ref(), resolve) {
                Ok(p) if ok && !p.can_match(&patterns) => {
                    let why = match &p {
                        Exclude::Name(_) => "no file that `paths` matches can have such a name (a pattern without a slash is matched against file names)".to_owned(),
                        Exclude::Path(resolved) => format!("no path that `paths` matches has this form (a pattern with a slash is matched against the whole path, here `{resolved}`)"),
                    };
                    cx.warn(
                        &pattern.span(),
                        format!(
                            "exclude pattern `{}` can never match: {why}",
                            pattern.get_ref()
                        ),
                    );
                    exclude.push(p);
                }
                Ok(p) => exclude.push(p),
                Err(e) => {
                    cx.error(&pattern.span(), format!("invalid glob: {e}"));
                    ok = false;
                }
            }
        }
        // A zero is an error at its position, never clamped: a batch of
        // no events or a cap of no files would mean nothing is ever read.
        let mut count = |value: &Option<Spanned<usize>>, name: &str, default: usize| {
            let n = cx.at_least_one(value.as_ref(), name, default);
            ok &= n.is_some();
            n.unwrap_or(default)
        };
        let max_line_bytes = count(&self.max_line_bytes, "max_line_bytes", 512 * 1024);
        let batch_events = count(&self.batch_events, "batch_events", 1024);
        let batch_bytes = count(&self.batch_bytes, "batch_bytes", 1024 * 1024);
        let max_open_files = count(&self.max_open_files, "max_open_files", 1024);
        let multiline = match self.multiline {
            None => None,
            Some(m) => {
                let max_lines = count(&m.max_lines, "max_lines", 500);
                match regex::Regex::new(m.pattern.get_ref()) {
                    Ok(pattern) => Some(Arc::new(Multiline {
                        pattern,
                        negate: m.negate,
                        match_: m.match_.unwrap_or(Match::Previous),
                        max_lines,
                        max_bytes: max_line_bytes,
                        timeout: secs(m.timeout, Duration::from_secs(5)),
                    })),
                    Err(e) => {
                        cx.error(&m.pattern.span(), format!("invalid multiline pattern: {e}"));
                        ok = false;
                        None
                    }
                }
            }
        };
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
            fields: self.fields.map(crate::event::Map::from),
            start_position: self.start_position.unwrap_or(StartPosition::Beginning),
            exit_after_eof: self.exit_after_eof,
            checkpoint: self.checkpoint.unwrap_or(true),
            on_corrupt_checkpoint: self
                .on_corrupt_checkpoint
                .unwrap_or(OnCorruptCheckpoint::Beginning),
            follow_symlinks: self.follow_symlinks,
            max_line_bytes,
            batch_events,
            batch_bytes,
            scan_interval: secs(self.scan_interval, Duration::from_secs(10)),
            poll_interval: secs(self.poll_interval, Duration::from_millis(250)),
            partial_line_timeout: secs(self.partial_line_timeout, Duration::from_secs(60)),
            close_inactive: secs(self.close_inactive, Duration::from_secs(300)),
            ignore_older: self.ignore_older.map(|s| s.0),
            clean_removed: self.clean_removed.unwrap_or(true),
            max_open_files,
            multiline,
        })
    }
}
