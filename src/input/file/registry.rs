//! The checkpoint registry of one file input: per file its identity and the
//! offset just past the last line whose event was acknowledged downstream.
//!
//! The file is versioned JSON, written atomically (temp file, fsync, rename,
//! fsync of the directory). Two kinds of trouble are kept apart, because
//! confusing them loses lines:
//! - a registry that cannot be *read* (permission denied, I/O error) may be
//!   perfectly good: [`LoadError`], the input does not start and nothing is
//!   overwritten;
//! - a registry that was read but cannot be *parsed* is moved aside (its
//!   bytes survive under `*.corrupt-<time>`) and reported as
//!   [`Stored::Corrupt`]; if it cannot be moved aside, that is a
//!   [`LoadError`] too, so the next save never overwrites it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::{Fingerprint, Inode};

const VERSION: u32 = 1;

/// One file's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable identity (the hex fingerprint at first sight, with `-i<inode>`
    /// when that covered fewer than 1024 bytes); origin ids derive from it,
    /// so it stays when the fingerprint grows.
    pub identity: String,
    /// How many leading bytes `hash` covers: less than 1024 while the file
    /// is short, when the entry names the file only on inode `ino`; the
    /// full 1024 (content alone) once it has grown past that.
    pub fp_len: u32,
    /// xxh3-128 of those bytes, in hex.
    pub fp_hash: String,
    /// Last known path (informational, and for `logpipe status`).
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// Offset just past the last acknowledged line.
    pub offset: u64,
    /// Size of the file when last seen.
    #[serde(default)]
    pub size: u64,
    /// When the entry last changed (RFC 3339).
    pub updated: String,
    /// Set for a file taken over from Filebeat (`logpipe import
    /// --filebeat-registry`): its lines get the ids the index half gives
    /// Filebeat's messages of them, so a line both shipped is one document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filebeat_ids: Option<FilebeatIds>,
}

/// What Filebeat's messages of a file's lines said of them, for their ids
/// ([`crate::event::line_id::filebeat_line_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilebeatIds {
    /// `host.name`.
    pub host: String,
    /// `log.file.path`: the path in Filebeat's registry.
    pub path: String,
}

impl Entry {
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        u128::from_str_radix(&self.fp_hash, 16)
            .ok()
            .map(|hash| Fingerprint {
                len: self.fp_len,
                hash,
            })
    }

    pub fn inode(&self) -> Inode {
        Inode {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    files: Vec<Entry>,
}

/// What loading found.
#[derive(Debug)]
pub enum Stored {
    Fresh,
    Ok(Vec<Entry>),
    /// The file could not be parsed and was moved to `moved_to`.
    Corrupt {
        reason: String,
        moved_to: PathBuf,
    },
}

/// A registry that must not be replaced: it exists but cannot be read, or it
/// is corrupt and cannot be moved out of the way.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the checkpoint registry {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the checkpoint registry {} is corrupt ({reason}) and cannot be moved aside to {}: {source}", path.display(), aside.display())]
    Stuck {
        path: PathBuf,
        reason: String,
        aside: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What `logpipe status` finds, without touching anything.
#[derive(Debug)]
pub enum Peek {
    Fresh,
    Ok(Vec<Entry>),
    /// Unreadable or unparseable, with the reason.
    Bad(String),
}

#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
}

impl Registry {
    pub fn new(path: PathBuf) -> Self {
        Registry { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the entries: `Fresh` when there is no registry yet, `Corrupt`
    /// once an unparseable one was moved aside, an error when the registry
    /// exists but must be left alone (see the module docs).
    pub fn load(&self) -> Result<Stored, LoadError> {
        // A temp file left by a crash mid-write is incomplete by definition:
        // the rename never happened, so the main file is the last good one.
        let _ = fs::remove_file(self.temp_path());
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Stored::Fresh),
            Err(source) => {
                return Err(LoadError::Unreadable {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        match parse(&text) {
            Ok(entries) => Ok(Stored::Ok(entries)),
            Err(reason) => self.move_aside(reason),
        }
    }

    /// Reads the entries without touching anything (for `logpipe status`,
    /// which must not move a registry the daemon is using).
    pub fn peek(&self) -> Peek {
        match fs::read(&self.path) {
            Ok(text) => match parse(&text) {
                Ok(entries) => Peek::Ok(entries),
                Err(reason) => Peek::Bad(reason),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Peek::Fresh,
            Err(e) => Peek::Bad(format!("cannot read: {e}")),
        }
    }

    fn move_aside(&self, reason: String) -> Result<Stored, LoadError> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
        let aside = self.path.with_extension(format!("corrupt-{stamp}"));
        match fs::rename(&self.path, &aside) {
            Ok(()) => Ok(Stored::Corrupt {
                reason,
                moved_to: aside,
            }),
            Err(source) => Err(LoadError::Stuck {
                path: self.path.clone(),
                reason,
                aside,
                source,
            }),
        }
    }

    fn temp_path(&self) -> PathBuf {
        self.path.with_extension("json.tmp")
    }

    /// Writes the entries atomically. Blocking: call from a blocking thread.
    pub fn save(&self, files: &[Entry]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let body = serde_json::to_vec_pretty(&OnDisk {
            version: VERSION,
            files: files.to_vec(),
        })?;
        let temp = self.temp_path();
        {
            let mut f = File::create(&temp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        fs::rename(&temp, &self.path)?;
        File::open(dir)?.sync_all()
    }
}

fn parse(text: &[u8]) -> Result<Vec<Entry>, String> {
    match serde_json::from_slice::<OnDisk>(text) {
        Ok(disk) if disk.version == VERSION => Ok(disk.files),
        Ok(disk) => Err(format!("unknown version {}", disk.version)),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> Entry {
        Entry {
            identity: "abc".into(),
            fp_len: 1024,
            fp_hash: format!("{:032x}", 7u128),
            path: "/var/log/httpd/access_log".into(),
            dev: 1,
            ino: 2,
            offset,
            size: offset,
            updated: "2026-11-25T00:00:00Z".into(),
            filebeat_ids: None,
        }
    }

    #[test]
    fn saved_entries_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("sub/reg.json"));
        assert!(matches!(reg.load(), Ok(Stored::Fresh)));
        reg.save(&[entry(10)]).unwrap();
        reg.save(&[entry(20)]).unwrap();
        match reg.load().unwrap() {
            Stored::Ok(files) => assert_eq!(files, vec![entry(20)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(entry(1).fingerprint().unwrap().hash, 7);
    }

    #[test]
    fn version_1_files_written_by_hand_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reg.json");
        fs::write(
            &path,
            r#"{"version":1,"files":[{"identity":"abc","fp_len":1024,"fp_hash":"07","path":"/x","dev":1,"ino":2,"offset":5,"updated":"t"}]}"#,
        )
        .unwrap();
        match Registry::new(path).load().unwrap() {
            Stored::Ok(files) => assert_eq!(files[0].offset, 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_registry_is_moved_aside_with_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reg.json");
        fs::write(&path, b"{not json").unwrap();
        let reg = Registry::new(path.clone());
        match reg.load().unwrap() {
            Stored::Corrupt { moved_to, reason } => {
                assert_eq!(fs::read(&moved_to).unwrap(), b"{not json");
                assert!(reason.contains("invalid JSON"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
        assert!(matches!(reg.load(), Ok(Stored::Fresh)));
    }

    #[test]
    fn an_unreadable_registry_is_an_error_and_stays_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading fails with an I/O
        // error other than "not found", whoever runs the test (root too).
        let path = dir.path().join("reg.json");
        fs::create_dir(&path).unwrap();
        let err = Registry::new(path.clone()).load().unwrap_err();
        assert!(matches!(err, LoadError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("reg.json"), "{err}");
        assert!(path.is_dir());
    }

    #[test]
    fn a_corrupt_registry_that_cannot_be_moved_is_an_error() {
        // The rename fails (here: the file vanished under it), so the
        // registry is not reported as moved, and nothing may overwrite it.
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("gone/reg.json"));
        match reg.move_aside("invalid JSON".into()) {
            Err(err @ LoadError::Stuck { .. }) => {
                assert!(err.to_string().contains("cannot be moved aside"), "{err}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("reg.json"));
        reg.save(&[entry(3)]).unwrap();
        fs::write(dir.path().join("reg.json.tmp"), b"garbage").unwrap();
        assert!(matches!(reg.load(), Ok(Stored::Ok(_))));
    }
}
