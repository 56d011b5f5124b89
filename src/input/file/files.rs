//! The state of followed files: each open file's reader, identity and
//! lane ([`Tracked`]), and the checkpoints of every file known by identity
//! ([`Files`]). Discovery (`scan`) adds to it, the loop (`tail`, `round`)
//! reads, settles and releases.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use super::fingerprint::{Fingerprint, Inode};
use super::multiline::Joiner;
use super::reader::LineReader;
use super::registry::Entry;
use crate::ack::LaneId;

/// The files being followed and the checkpoints by identity.
#[derive(Default)]
pub(super) struct Files {
    /// Open files, each with its lane.
    pub open: Vec<Tracked>,
    /// Checkpoints by identity: the registry's content.
    pub known: HashMap<String, Entry>,
    /// `known` changed since the last save.
    pub dirty: bool,
}

impl Files {
    pub fn new(known: HashMap<String, Entry>) -> Self {
        Files {
            open: Vec::new(),
            known,
            dirty: false,
        }
    }
}

/// A file being followed.
pub(super) struct Tracked {
    pub path: PathBuf,
    /// The path it was opened through: `path`, or a followed link's target,
    /// which is the name inotify reports its writes under.
    pub opened: PathBuf,
    pub inode: Inode,
    /// Registry key and origin-id seed; fixed at first sight.
    pub identity: String,
    pub fingerprint: Fingerprint,
    pub lane: LaneId,
    /// `None` only while a blocking read holds it.
    pub reader: Option<LineReader>,
    pub joiner: Joiner,
    pub at_eof: bool,
    /// Its path now names another file, or none: read until it stays
    /// unchanged for `close_inactive`, then release it.
    pub detached: bool,
    /// When bytes were last read from it.
    pub last_growth: Instant,
    /// When its modification time is older than `ignore_older`, as far as
    /// the last read knows.
    pub old: bool,
    /// Checkpoints of this file never go past this offset: set when the
    /// file took over from a copytruncated one whose batches in flight may
    /// end past this copy's end.
    pub clamp: Option<u64>,
    /// Size at the last read, for bytes-behind figures.
    pub size: u64,
    /// Bytes behind as last put in the gauge.
    pub reported_behind: Option<u64>,
    /// May have new data although it was read to its end: inotify named
    /// it, or a scan saw its size change. A file at its end is not read
    /// again until then (when inotify works), so idle files cost nothing.
    pub changed: bool,
}

impl Tracked {
    pub fn new(
        path: PathBuf,
        inode: Inode,
        identity: String,
        fingerprint: Fingerprint,
        lane: LaneId,
        reader: LineReader,
    ) -> Self {
        Tracked {
            opened: path.clone(),
            path,
            inode,
            identity,
            fingerprint,
            lane,
            reader: Some(reader),
            joiner: Joiner::default(),
            at_eof: false,
            detached: false,
            last_growth: Instant::now(),
            old: false,
            clamp: None,
            size: 0,
            reported_behind: None,
            changed: true,
        }
    }

    /// Read to its end, with no held partial line or unfinished event.
    pub fn drained(&self) -> bool {
        self.at_eof
            && !self.joiner.is_pending()
            && self.reader.as_ref().is_some_and(|r| r.pending_bytes() == 0)
    }
}
