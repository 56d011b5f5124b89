//! Discovery: which files match the input's globs, which of them are new,
//! renamed or gone, and opening them (when to look again is `watch`'s).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{SecondsFormat, Utc};
use xxhash_rust::xxh3::Xxh3Builder;

use super::config::{FileInput, StartPosition};
use super::exclude::Exclude;
use super::files::{Files, Tracked};
use super::fingerprint::{self, Fingerprint, Inode};
use super::reader::LineReader;
use super::registry::Entry;
use super::watch::watch_root;
use crate::ack::AckTracker;
use crate::telemetry::Throttle;

/// A regular file matching the patterns.
#[derive(Debug)]
pub struct Candidate {
    /// The path that matched (for a followed symbolic link, the link).
    pub path: PathBuf,
    /// What to open: `path`, or the canonical target of a followed link.
    pub open: PathBuf,
    pub inode: Inode,
    pub size: u64,
    pub modified: SystemTime,
}

/// A matched path that is not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// What one look at the patterns found.
#[derive(Debug, Default)]
pub struct Found {
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
}

/// Expands the patterns into regular files, minus exclusions, oldest first
/// (rotated files before the live one, so a cap on open files lets the
/// backlog drain in order). Blocking.
///
/// Symbolic links are not followed unless `follow_symlinks`, and then only
/// to a target that matches the patterns itself: otherwise anyone who can
/// create a link in a log directory could have logpipe read (and ship) any
/// file it can read. Directories, FIFOs, sockets and devices that a glob
/// matches are skipped too; they are listed in `skipped` so the caller can
/// say so once.
pub fn find(patterns: &[String], exclude: &[Exclude], follow_symlinks: bool) -> Found {
    let mut found = Found::default();
    let targets = follow_symlinks.then(|| TargetRules::new(patterns));
    // Thousands of files: deduplicate by set, never pairwise, and look each
    // up from its directory rather than walking its whole path again.
    let mut seen_paths: HashSet<PathBuf, Xxh3Builder> = HashSet::default();
    let mut seen_inodes: HashSet<Inode, Xxh3Builder> = HashSet::default();
    let mut dirs = Dirs::default();
    for pattern in patterns {
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        for path in paths.flatten() {
            if exclude.iter().any(|p| p.matches(&path)) || !seen_paths.insert(path.clone()) {
                continue;
            }
            let Some(link_stat) = dirs.lstat(&path) else {
                continue;
            };
            let (open, stat) = if link_stat.kind == Kind::Symlink {
                let Some(rules) = &targets else {
                    found.skipped.push(Skipped {
                        path,
                        why: "a symbolic link (follow_symlinks is off)".into(),
                    });
                    continue;
                };
                let Ok(target) = std::fs::canonicalize(&path) else {
                    continue; // dangling: nothing to read
                };
                if !rules.allows(&target, exclude) {
                    found.skipped.push(Skipped {
                        why: format!(
                            "a symbolic link to {}, which does not match `paths`",
                            target.display()
                        ),
                        path,
                    });
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&target) else {
                    continue;
                };
                (target, Stat::of(&meta))
            } else {
                (path.clone(), link_stat)
            };
            if stat.kind != Kind::File {
                found.skipped.push(Skipped {
                    path,
                    why: format!("{}, not a regular file", stat.kind.describe()),
                });
                continue;
            }
            if !seen_inodes.insert(stat.inode) {
                continue; // a link and its target: one file
            }
            found.candidates.push(Candidate {
                inode: stat.inode,
                size: stat.size,
                modified: stat.modified,
                path,
                open,
            });
        }
    }
    found.candidates.sort_by_key(|c| c.modified);
    found
}

/// What [`find`] needs to know of a path, without following a last link.
struct Stat {
    kind: Kind,
    inode: Inode,
    size: u64,
    modified: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Symlink,
    Dir,
    Fifo,
    Socket,
    Device,
}

impl Kind {
    fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::Device,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Symlink => "a symbolic link",
            Kind::Dir => "a directory",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
        }
    }
}

impl Stat {
    fn of(meta: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            kind: Kind::from_mode(meta.mode()),
            inode: Inode::of(meta),
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// The directories of one [`find`], opened once each, so that a file is
/// looked up by name in its directory (`fstatat`) instead of by its whole
/// path: the path walk was half the cost of a scan over thousands of files.
#[derive(Default)]
struct Dirs {
    open: HashMap<PathBuf, Option<std::fs::File>, Xxh3Builder>,
}

impl Dirs {
    fn lstat(&mut self, path: &Path) -> Option<Stat> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::symlink_metadata(path).ok().map(|m| Stat::of(&m));
        };
        let dir = self.open.entry(parent.to_path_buf()).or_insert_with(|| {
            use std::os::unix::fs::OpenOptionsExt;
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
                .open(parent)
                .ok()
        });
        let (Some(dir), Ok(name)) = (dir.as_ref(), std::ffi::CString::new(name.as_bytes())) else {
            return std::fs::symlink_metadata(path).ok().map(|m| Stat::of(&m));
        };
        // SAFETY: `st` is written by fstatat before it is read; the
        // descriptor and the NUL-terminated name outlive the call.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            ) != 0
            {
                return None;
            }
            st
        };
        let modified = u64::try_from(st.st_mtime)
            .ok()
            .map_or(SystemTime::UNIX_EPOCH, |secs| {
                SystemTime::UNIX_EPOCH
                    + Duration::new(secs, st.st_mtime_nsec.clamp(0, 999_999_999) as u32)
            });
        Some(Stat {
            kind: Kind::from_mode(st.st_mode),
            inode: Inode {
                dev: st.st_dev,
                ino: st.st_ino,
            },
            size: u64::try_from(st.st_size).unwrap_or(0),
            modified,
        })
    }
}

/// Which targets a followed symbolic link may have: paths that match a
/// pattern as written, or with its literal directory resolved (so that
/// `/var/log/httpd/*.log` still matches when `/var/log/httpd` is itself a
/// link to `/data/httpd`).
struct TargetRules {
    patterns: Vec<glob::Pattern>,
}

impl TargetRules {
    fn new(patterns: &[String]) -> Self {
        let mut out = Vec::new();
        for pattern in patterns {
            out.extend(glob::Pattern::new(pattern).ok());
            let (root, _) = watch_root(pattern);
            let Ok(real_root) = std::fs::canonicalize(&root) else {
                continue;
            };
            let Ok(rest) = Path::new(pattern).strip_prefix(&root) else {
                continue;
            };
            let resolved = real_root.join(rest);
            out.extend(glob::Pattern::new(&resolved.to_string_lossy()).ok());
        }
        TargetRules { patterns: out }
    }

    fn allows(&self, target: &Path, exclude: &[Exclude]) -> bool {
        self.patterns.iter().any(|p| p.matches_path(target))
            && !exclude.iter().any(|p| p.matches(target))
    }
}

/// Opens a file found by [`find`] for reading, refusing what is not a
/// regular file by then: the last path component must not be a symbolic
/// link (a followed link is opened through its resolved target), and a FIFO
/// put in its place does not block the open (`O_NONBLOCK` has no effect on
/// regular files).
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Discovery's own state between scans.
pub(super) struct Discovery {
    /// The next scan is the first of a first start: `start_position`
    /// applies to the files it finds.
    first_scan: bool,
    /// New files that may be a copy of a followed short file, not read yet
    /// (see [`Discovery::copy_wait_over`]).
    maybe_copies: HashMap<Inode, MaybeCopy>,
    /// Files this process found read to their end, with the size and
    /// modification time they had then: not opened again while both stay
    /// the same. Kept here rather than taken from the registry's dev/inode,
    /// since an inode is reused after a deletion, possibly by a file of the
    /// same size.
    read_to_end: HashMap<Inode, (u64, SystemTime), Xxh3Builder>,
    /// Files over `max_open_files` at the last scan.
    waiting: usize,
    /// Matched paths that are not read (links, FIFOs, …), reported once.
    skipped: HashSet<PathBuf>,
    cap_warning: Throttle,
    open_warning: Throttle,
}

/// A new file that may be a copy of a followed short one (see
/// [`Discovery::copy_wait_over`]).
struct MaybeCopy {
    /// When this process first saw it.
    since: Instant,
    /// Where to start once it is read: its size at first sight when it was
    /// present at start and `start_position = "end"`.
    start: Option<u64>,
}

impl Discovery {
    pub fn new(first_start: bool) -> Self {
        Discovery {
            first_scan: first_start,
            maybe_copies: HashMap::new(),
            read_to_end: HashMap::default(),
            waiting: 0,
            skipped: HashSet::new(),
            cap_warning: Throttle::warnings(),
            open_warning: Throttle::warnings(),
        }
    }

    /// Files over `max_open_files` at the last scan.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// When the first file waiting as a possible copy is due to be read.
    pub fn next_due(&self, close_inactive: Duration) -> Option<Instant> {
        self.maybe_copies
            .values()
            .map(|s| s.since + close_inactive)
            .min()
    }

    /// Finds files matching the patterns: notes renamed and vanished ones,
    /// starts following new ones (up to `max_open_files`, each on a lane of
    /// `tracker`), prunes the checkpoints of files gone for good. Returns
    /// whether a file got a new identity, which must be saved before its
    /// lines leave.
    pub async fn scan(
        &mut self,
        input: &FileInput,
        files: &mut Files,
        tracker: &mut AckTracker<u64>,
    ) -> bool {
        let patterns = input.patterns.clone();
        let exclude = input.exclude.clone();
        let follow = input.follow_symlinks;
        let found = tokio::task::spawn_blocking(move || find(&patterns, &exclude, follow))
            .await
            .unwrap_or_default();
        self.report_skipped(found.skipped);
        let candidates = found.candidates;
        let first = std::mem::replace(&mut self.first_scan, false);
        // Thousands of files: look them up by inode, never pairwise.
        let by_inode: HashMap<Inode, &Candidate, Xxh3Builder> =
            candidates.iter().map(|c| (c.inode, c)).collect();
        for file in &mut files.open {
            if file.detached {
                continue;
            }
            match by_inode.get(&file.inode) {
                Some(c) if c.path == file.path => {
                    // inotify may have missed a write (or is not there):
                    // a size other than the last read's means read again.
                    if c.size != file.size {
                        file.changed = true;
                    }
                }
                Some(moved) => {
                    tracing::info!(from = %file.path.display(), to = %moved.path.display(), "File was renamed; following it under its new name.");
                    file.path = moved.path.clone();
                    file.changed = true;
                }
                None => {
                    tracing::info!(path = %file.path.display(), "File was renamed away or deleted; reading it until it stays unchanged for close_inactive.");
                    file.detached = true;
                }
            }
        }
        let open_inodes: HashSet<Inode, Xxh3Builder> = files.open.iter().map(|f| f.inode).collect();
        // A file that waited as a possible copy and was taken over as
        // one (see `round`) is followed now.
        self.maybe_copies
            .retain(|inode, _| by_inode.contains_key(inode) && !open_inodes.contains(inode));
        self.read_to_end
            .retain(|inode, _| by_inode.contains_key(inode));
        let mut waiting = 0;
        let mut unopened = false;
        let mut new_identities = false;
        for candidate in &candidates {
            if candidate.size == 0 || open_inodes.contains(&candidate.inode) {
                continue;
            }
            // Found read to its end by an earlier scan, and unchanged since:
            // rotated files already read are not opened and fingerprinted
            // again on every scan. A file that grows, or a new file on a
            // reused inode (another modification time), no longer matches.
            if self.read_to_end.get(&candidate.inode) == Some(&(candidate.size, candidate.modified))
            {
                continue;
            }
            if files.open.len() >= input.max_open_files {
                waiting += 1;
                continue;
            }
            // Candidates are distinct inodes, so none is opened twice here.
            match self.open(input, files, tracker, candidate, first).await {
                Opened::No => unopened = true,
                Opened::Known | Opened::Skipped => {}
                Opened::New => new_identities = true,
            }
        }
        self.waiting = waiting;
        if waiting > 0 {
            if let Some(suppressed) = self.cap_warning.ready() {
                tracing::warn!(
                    waiting,
                    open = files.open.len(),
                    max_open_files = input.max_open_files,
                    suppressed,
                    "Files wait for a free slot (max_open_files); each is read once a followed file is drained and released."
                );
            }
        }
        // Entries are matched to files by fingerprint when a file is opened,
        // which refreshes their dev/inode hint; a file that could not be
        // opened or fingerprinted this time keeps a stale hint, so prune only
        // when every candidate was looked at.
        if input.clean_removed && waiting == 0 && !unopened {
            clean_removed(files, &candidates);
        }
        new_identities
    }

    /// Logs each matched path that is not read, once while it stays so.
    fn report_skipped(&mut self, skipped: Vec<Skipped>) {
        self.skipped
            .retain(|path| skipped.iter().any(|s| &s.path == path));
        for s in skipped {
            if self.skipped.insert(s.path.clone()) {
                tracing::warn!(path = %s.path.display(), reason = %s.why, "Matched path is not read: {}.", s.why);
            }
        }
    }

    /// Opens a candidate, decides where to start in it and follows it on a
    /// new lane.
    async fn open(
        &mut self,
        input: &FileInput,
        files: &mut Files,
        tracker: &mut AckTracker<u64>,
        candidate: &Candidate,
        first_scan: bool,
    ) -> Opened {
        let path = candidate.path.clone();
        let opening = candidate.open.clone();
        let followed: Vec<(Vec<PathBuf>, Inode, u32)> = files
            .open
            .iter()
            .map(|f| {
                (
                    vec![f.opened.clone(), f.path.clone()],
                    f.inode,
                    f.fingerprint.len,
                )
            })
            .collect();
        let opened = tokio::task::spawn_blocking(move || {
            let file = open_regular(&opening)?;
            let meta = file.metadata()?;
            let prefix = fingerprint::read_prefix(&file)?;
            let copying = being_copied_from(&prefix, Inode::of(&meta), &followed);
            Ok::<_, std::io::Error>((file, meta, prefix, copying))
        })
        .await;
        let (file, meta, prefix, copying) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                if let Some(suppressed) = self.open_warning.ready() {
                    tracing::warn!(path = %path.display(), error = %e, suppressed, "Cannot open file; will try again.");
                }
                return Opened::No;
            }
            Err(_) => return Opened::No,
        };
        if prefix.is_empty() {
            return Opened::Skipped;
        }
        let size = meta.len();
        let inode = Inode::of(&meta);
        // The longest stored fingerprint this file starts with; among equals
        // the one with the same inode. One shorter than the full 1024 bytes
        // (a file that was short when last seen) is a weak identity: it
        // names this file only on the same inode (device numbers may
        // change across reboots, so they only break ties), or two new
        // files with the same first line would count as one.
        let known = files
            .known
            .values()
            .filter(|e| {
                e.fingerprint().is_some_and(|fp| {
                    fp.matches_prefix(&prefix) && (fp.is_complete() || e.ino == inode.ino)
                })
            })
            .max_by_key(|e| (e.fp_len, e.inode() == inode))
            .cloned();
        if let Some(entry) = &known {
            if let Some(other) = files.open.iter().find(|f| f.identity == entry.identity) {
                // The same content under a second name: the copy made by
                // copytruncate (picked up when the original is truncated)
                // or a hard link. Reading it too would repeat every line.
                tracing::debug!(path = %path.display(), followed = %other.path.display(), "File has the same content as a followed file; not reading it twice.");
                return Opened::Skipped;
            }
        }
        let fp = Fingerprint::of(&prefix);
        if known.is_none() {
            // A copy of a followed file that is still identified by a short
            // prefix (copytruncate made it, and the original's truncation
            // is not seen yet): its inode differs, so it matches no entry,
            // and read as a file of its own, the lines already read from the
            // original would come twice. It waits; once the original's
            // truncation is seen, reading goes on in the copy where it
            // stopped (see `round`).
            // Or a copy still being written (logrotate's copy, seen by the
            // scan its creation triggered): what it holds so far is the
            // start of a followed file, too short to be matched by that
            // file's fingerprint yet.
            let copy_of = files
                .open
                .iter()
                .find(|f| f.inode != inode && f.fingerprint.matches_prefix(&prefix))
                .map(|f| f.path.clone())
                .or(copying);
            if let Some(original) = copy_of {
                let first = first_scan;
                if !self.copy_wait_over(input, &path, &original, inode, &meta, first) {
                    return Opened::Skipped;
                }
            }
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let (identity, offset) = match known {
            Some(entry) if entry.offset == size => {
                // Read to its end already; follow it only once it grows.
                if let Some(e) = files.known.get_mut(&entry.identity) {
                    (e.dev, e.ino, e.size, e.path) = (inode.dev, inode.ino, size, path);
                    files.dirty = true;
                }
                self.read_to_end
                    .insert(inode, (candidate.size, candidate.modified));
                return Opened::Known;
            }
            Some(entry) if entry.offset < size => {
                tracing::info!(path = %path.display(), offset = entry.offset, "Resuming file from its checkpoint.");
                (entry.identity, entry.offset)
            }
            Some(entry) => {
                tracing::warn!(path = %path.display(), checkpoint = entry.offset, size, "File is shorter than its checkpoint (truncated while logpipe was not running); reading it from the start.");
                // Derived from what is on disk, not from the clock: after a
                // crash before the next checkpoint write, the same content
                // gets the same identity, hence the same origin ids.
                (
                    format!("{}-t{}", fingerprint::identity_of(fp, inode), entry.offset),
                    0,
                )
            }
            None => {
                let offset = match self.maybe_copies.remove(&inode) {
                    // A line boundary when it was seen; truncated since: 0.
                    Some(waited) => waited.start.filter(|&s| s <= size).unwrap_or(0),
                    None => match (first_scan, input.start_position) {
                        (true, StartPosition::End) => size,
                        _ => 0,
                    },
                };
                tracing::info!(path = %path.display(), offset, size, "Following new file.");
                (fingerprint::identity_of(fp, inode), offset)
            }
        };
        let new_identity = !files.known.contains_key(&identity);
        let entry = files
            .known
            .entry(identity.clone())
            .or_insert_with(|| Entry {
                identity: identity.clone(),
                fp_len: fp.len,
                fp_hash: fp.to_hex(),
                path: path.clone(),
                dev: inode.dev,
                ino: inode.ino,
                offset,
                size,
                updated: now,
                filebeat_ids: None,
            });
        (entry.path, entry.dev, entry.ino) = (path.clone(), inode.dev, inode.ino);
        entry.offset = offset;
        if fp.len > entry.fp_len {
            entry.fp_len = fp.len;
            entry.fp_hash = fp.to_hex();
        }
        files.dirty = true;
        let reader = match LineReader::new(file, offset, input.max_line_bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Cannot seek in file; will try again.");
                return Opened::No;
            }
        };
        let lane = tracker.open_lane();
        let mut tracked = Tracked::new(
            path,
            inode,
            identity,
            Fingerprint::of(&prefix),
            lane,
            reader,
        );
        tracked.opened = candidate.open.clone();
        files.open.push(tracked);
        // Written once the scan's opens are done, before any of them is
        // read (see `Tail::scan`).
        if new_identity {
            Opened::New
        } else {
            Opened::Known
        }
    }

    /// Whether a new file that starts like the followed file (a short one,
    /// or one it is a partial copy of) `original` may be read as a file of
    /// its own: once it differs from it
    /// (then it is not looked at here), or `close_inactive` after this
    /// process first saw it (a second file that happens to start with the
    /// same bytes waits at most that long). In batch mode
    /// (`exit_after_eof`) every file is complete, so it is read at once.
    fn copy_wait_over(
        &mut self,
        input: &FileInput,
        path: &Path,
        original: &Path,
        inode: Inode,
        meta: &std::fs::Metadata,
        first_scan: bool,
    ) -> bool {
        let wait = input.close_inactive;
        if input.exit_after_eof {
            return true;
        }
        let end = input.start_position == StartPosition::End;
        let waiting = self.maybe_copies.entry(inode).or_insert_with(|| {
            tracing::info!(
                path = %path.display(),
                original = %original.display(),
                size = meta.len(),
                "New file starts like a followed file: it may be its copy (copytruncate), whole or still being written; it is read once it differs, or after close_inactive ({}).",
                humantime::format_duration(wait)
            );
            MaybeCopy {
                since: Instant::now(),
                start: (first_scan && end).then_some(meta.len()),
            }
        });
        let ready = waiting.since.elapsed() >= wait;
        if ready {
            tracing::info!(path = %path.display(), original = %original.display(), "Reading a file that starts like a followed one: close_inactive passed and the followed file was not truncated.");
        }
        ready
    }
}

/// The followed file (of another inode) whose first bytes are all of
/// `prefix`, when `prefix` is shorter than that file's fingerprint: a copy
/// of it being made, or a new file that so far starts like it. A followed
/// file is read through the names it is known by, and only where they still
/// name it (after a rename, its old name may name the new file). Blocking.
fn being_copied_from(
    prefix: &[u8],
    inode: Inode,
    followed: &[(Vec<PathBuf>, Inode, u32)],
) -> Option<PathBuf> {
    if prefix.is_empty() || prefix.len() >= fingerprint::FINGERPRINT_BYTES {
        return None;
    }
    followed.iter().find_map(|(paths, other, fp_len)| {
        if *other == inode || (*fp_len as usize) <= prefix.len() {
            return None;
        }
        paths.iter().find_map(|path| {
            let file = std::fs::File::open(path).ok()?;
            let same = file.metadata().is_ok_and(|m| Inode::of(&m) == *other);
            let start = fingerprint::read_prefix(&file).ok().filter(|_| same)?;
            start.starts_with(prefix).then(|| path.clone())
        })
    })
}

/// What [`Discovery::open`] did with a candidate.
enum Opened {
    /// Could not open or position it: tried again at the next scan, and
    /// checkpoints are not pruned meanwhile.
    No,
    /// Left alone for now: empty, a second name of a followed file, or a
    /// possible copy of a followed short file.
    Skipped,
    /// Known already: followed from its checkpoint, or read to its end.
    Known,
    /// Followed under an identity the registry did not have.
    New,
}

/// Forgets the checkpoints of files no longer found (`clean_removed`).
fn clean_removed(files: &mut Files, candidates: &[Candidate]) {
    let followed: HashSet<&str> = files.open.iter().map(|f| f.identity.as_str()).collect();
    let present: HashSet<Inode> = candidates.iter().map(|c| c.inode).collect();
    let before = files.known.len();
    files.known.retain(|identity, entry| {
        followed.contains(identity.as_str()) || present.contains(&entry.inode())
    });
    let removed = before - files.known.len();
    if removed > 0 {
        tracing::info!(
            removed,
            "Forgot the checkpoints of files no longer found (clean_removed)."
        );
        files.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_exclude_directories_and_excluded_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("access_log"), b"a\n").unwrap();
        std::fs::write(dir.path().join("access_log.gz"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("access_log.d")).unwrap();
        let pattern = format!("{}/access_log*", dir.path().display());
        let exclude = Exclude::new("*.gz", str::to_owned).unwrap();
        let found = find(&[pattern], &[exclude], false);
        let names: Vec<_> = found
            .candidates
            .iter()
            .map(|c| c.path.file_name().unwrap())
            .collect();
        assert_eq!(names, ["access_log"]);
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].why.contains("a directory"));
    }

    #[test]
    fn symbolic_links_are_skipped_unless_followed_to_a_matching_target() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let secret = dir.path().join("secret");
        std::fs::create_dir_all(logs.join("real")).unwrap();
        std::fs::write(&secret, b"root:x:0:0\n").unwrap();
        std::fs::write(logs.join("real/b.log"), b"b\n").unwrap();
        std::os::unix::fs::symlink(&secret, logs.join("shadow.log")).unwrap();
        std::os::unix::fs::symlink(logs.join("real/b.log"), logs.join("b.log")).unwrap();
        std::fs::write(logs.join("a.log"), b"a\n").unwrap();
        let patterns = [format!("{}/*.log", logs.display())];

        let found = find(&patterns, &[], false);
        let names: Vec<_> = found.candidates.iter().map(|c| c.path.clone()).collect();
        assert_eq!(names, [logs.join("a.log")]);
        assert_eq!(found.skipped.len(), 2, "{:?}", found.skipped);
        assert!(found
            .skipped
            .iter()
            .all(|s| s.why.contains("follow_symlinks is off")));

        // Followed: the link into another directory that `paths` also
        // covers is read through its target; the one out of them is not.
        let patterns = [
            format!("{}/*.log", logs.display()),
            format!("{}/real/*.log", logs.display()),
        ];
        let found = find(&patterns, &[], true);
        let opened: Vec<_> = found.candidates.iter().map(|c| c.open.clone()).collect();
        assert_eq!(opened.len(), 2, "{opened:?}");
        assert!(opened.contains(&std::fs::canonicalize(logs.join("real/b.log")).unwrap()));
        assert!(!opened.iter().any(|p| p.ends_with("secret")));
        let shadow = found
            .skipped
            .iter()
            .find(|s| s.path.ends_with("shadow.log"))
            .unwrap();
        assert!(
            shadow.why.contains("does not match `paths`"),
            "{}",
            shadow.why
        );
    }

    #[test]
    fn open_regular_refuses_links_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x\n").unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("link")).unwrap();
        assert!(open_regular(&file).is_ok());
        assert!(open_regular(&dir.path().join("link")).is_err());
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_regular(&fifo).is_err());
        let found = find(&[format!("{}/*", dir.path().display())], &[], false);
        assert_eq!(found.candidates.len(), 1);
        assert!(found.skipped.iter().any(|s| s.why.contains("a FIFO")));
    }
}
