//! Each Filebeat entry to the file on disk it is about, or the reason there
//! is none. Nothing is guessed: a file is taken only when its identity
//! (inode and device, or filestream's fingerprint) is Filebeat's, and
//! Filebeat's offset is checked against it (not past its end, just after a
//! newline), since an inode freed by a deleted file is soon another file's.
//!
//! A file that moved (a rotation: `access_log` renamed `access_log.1`) is
//! looked for by its identity among the other files of its directory and
//! the files the pipelines follow.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FbEntry, FbIdentity};
use crate::input::file::fingerprint::{self, Fingerprint, Inode};

/// Filebeat's fingerprint covers this many leading bytes (its default
/// `prospector.scanner.fingerprint.length`, at `offset` 0).
const FILEBEAT_FINGERPRINT_BYTES: u64 = 1024;

/// An entry whose file was found, at Filebeat's offset.
#[derive(Debug, Clone)]
pub struct Matched {
    pub path: PathBuf,
    /// Found under another name than Filebeat's `source`.
    pub renamed: bool,
    pub size: u64,
    pub inode: Inode,
    /// logpipe's fingerprint of the file (its identity in the checkpoints).
    pub fingerprint: Fingerprint,
}

/// What becomes of an entry.
#[derive(Debug, Clone)]
pub enum Verdict {
    Continue(Matched),
    Skip {
        /// The file the entry is about, as far as known.
        path: PathBuf,
        size: Option<u64>,
        why: String,
        /// Whether lines may be read twice or never because of it (a
        /// warning), rather than there being nothing left to read.
        warn: bool,
    },
}

/// Judges `entry`; `followed` are the files the pipelines' inputs match,
/// searched too for a moved file.
pub fn judge(entry: &FbEntry, followed: &[PathBuf]) -> Verdict {
    let skip = |path: &Path, size: Option<u64>, why: String, warn: bool| Verdict::Skip {
        path: path.to_path_buf(),
        size,
        why,
        warn,
    };
    if entry.ttl == Some(0) {
        return skip(
            &entry.source,
            None,
            "Filebeat was removing this state (ttl 0)".into(),
            false,
        );
    }
    let found = match &entry.identity {
        FbIdentity::Native { inode, device } => find(entry, followed, |_, meta| {
            meta.ino() == *inode && meta.dev() == *device
        }),
        FbIdentity::Other {
            inode: Some((inode, device)),
            ..
        } => find(entry, followed, |_, meta| {
            meta.ino() == *inode && meta.dev() == *device
        }),
        FbIdentity::Fingerprint(hex) => find(entry, followed, |path, meta| {
            meta.len() >= FILEBEAT_FINGERPRINT_BYTES
                && filebeat_fingerprint(path).is_some_and(|fp| fp == *hex)
        }),
        FbIdentity::Other { name, inode: None } => {
            return skip(
                &entry.source,
                None,
                format!("Filebeat identified it by `{name}`, which logpipe cannot check"),
                true,
            )
        }
    };
    let Some((path, meta)) = found else {
        if let FbIdentity::Native { inode, device } = &entry.identity {
            let at_source = std::fs::metadata(&entry.source).ok();
            if let Some(m) = at_source.filter(|m| m.ino() == *inode && m.dev() != *device) {
                return skip(
                    &entry.source,
                    Some(m.len()),
                    format!(
                        "its inode is at its path on device {} instead of Filebeat's {device} (renumbered after a reboot?): not taken as the same file; logpipe reads it from the start",
                        m.dev()
                    ),
                    true,
                );
            }
        }
        let why = match &entry.identity {
            FbIdentity::Fingerprint(_) => "no file with Filebeat's fingerprint is left",
            _ => "its inode is gone (the file was deleted, or is on another device now)",
        };
        return skip(&entry.source, None, why.into(), false);
    };
    let size = meta.len();
    if entry.offset > size {
        return skip(
            &path,
            Some(size),
            format!(
                "truncated: Filebeat's offset {} is past the end ({size} bytes); logpipe reads it from the start",
                entry.offset
            ),
            true,
        );
    }
    let opened = File::open(&path).and_then(|f| {
        let prefix = fingerprint::read_prefix(&f)?;
        let mut before = [0u8; 1];
        if entry.offset > 0 {
            f.read_exact_at(&mut before, entry.offset - 1)?;
        } else {
            before[0] = b'\n';
        }
        Ok((prefix, before[0]))
    });
    let (prefix, before) = match opened {
        Ok(v) => v,
        Err(e) => return skip(&path, Some(size), format!("cannot read it: {e}"), true),
    };
    if before != b'\n' {
        return skip(
            &path,
            Some(size),
            format!(
                "Filebeat's offset {} is not just after a line: not the file Filebeat read (an inode reused?); logpipe reads it from the start",
                entry.offset
            ),
            true,
        );
    }
    if prefix.is_empty() {
        return skip(
            &path,
            Some(0),
            "empty: logpipe reads it from the start once it grows".into(),
            false,
        );
    }
    Verdict::Continue(Matched {
        renamed: path != entry.source,
        path,
        size,
        inode: Inode::of(&meta),
        fingerprint: Fingerprint::of(&prefix),
    })
}

/// The file `entry` is about: its `source` if that is it, else another file
/// of the same directory, else one of `followed`.
fn find(
    entry: &FbEntry,
    followed: &[PathBuf],
    is_it: impl Fn(&Path, &std::fs::Metadata) -> bool,
) -> Option<(PathBuf, std::fs::Metadata)> {
    let regular = |p: &Path| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.file_type().is_file())
    };
    if let Some(meta) = regular(&entry.source).filter(|m| is_it(&entry.source, m)) {
        return Some((entry.source.clone(), meta));
    }
    let mut siblings: Vec<PathBuf> = entry
        .source
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    siblings.sort();
    siblings
        .iter()
        .chain(followed)
        .filter(|p| **p != entry.source)
        .find_map(|p| regular(p).filter(|m| is_it(p, m)).map(|m| (p.clone(), m)))
}

/// Filebeat's fingerprint of a file: the hex SHA-256 of its first 1024
/// bytes.
pub fn filebeat_fingerprint(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut buf = vec![0u8; FILEBEAT_FINGERPRINT_BYTES as usize];
    file.read_exact_at(&mut buf, 0).ok()?;
    let digest = Sha256::digest(&buf);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}
