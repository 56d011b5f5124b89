//! The checkpoint registry of one file input: per file its identity and the
//! offset just past the last line whose event was acknowledged downstream.
//!
//! The file is versioned JSON, written atomically (temp file, fsync, rename,
//! fsync of the directory). A registry that cannot be parsed is moved aside
//! and reported, and the input starts per its `start_position`: a corrupt
//! registry never stops the daemon.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::{Fingerprint, Inode};

const VERSION: u32 = 1;

/// One file's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable identity (the hex fingerprint at first sight); origin ids
    /// derive from it.
    pub identity: String,
    /// How many leading bytes `hash` covers (less than 1024 for a file that
    /// was short when first seen).
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
pub enum Loaded {
    Fresh,
    Ok(Vec<Entry>),
    /// The file was unreadable or corrupt and was moved to `moved_to`.
    Corrupt {
        reason: String,
        moved_to: Option<PathBuf>,
    },
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

    /// Loads the entries. Never fails: problems are returned as `Corrupt`.
    pub fn load(&self) -> Loaded {
        // A temp file left by a crash mid-write is incomplete by definition:
        // the rename never happened, so the main file is the last good one.
        let _ = fs::remove_file(self.temp_path());
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Fresh,
            Err(e) => {
                return Loaded::Corrupt {
                    reason: format!("cannot read: {e}"),
                    moved_to: None,
                }
            }
        };
        match serde_json::from_slice::<OnDisk>(&text) {
            Ok(disk) if disk.version == VERSION => Loaded::Ok(disk.files),
            Ok(disk) => self.move_aside(format!("unknown version {}", disk.version)),
            Err(e) => self.move_aside(format!("invalid JSON: {e}")),
        }
    }

    /// Loads the entries without touching anything (for `logpipe status`,
    /// which must not move a registry the daemon is using).
    pub fn load_read_only(&self) -> Loaded {
        match fs::read(&self.path) {
            Ok(text) => match serde_json::from_slice::<OnDisk>(&text) {
                Ok(disk) if disk.version == VERSION => Loaded::Ok(disk.files),
                Ok(disk) => Loaded::Corrupt {
                    reason: format!("unknown version {}", disk.version),
                    moved_to: None,
                },
                Err(e) => Loaded::Corrupt {
                    reason: format!("invalid JSON: {e}"),
                    moved_to: None,
                },
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Loaded::Fresh,
            Err(e) => Loaded::Corrupt {
                reason: format!("cannot read: {e}"),
                moved_to: None,
            },
        }
    }

    fn move_aside(&self, reason: String) -> Loaded {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
        let aside = self.path.with_extension(format!("corrupt-{stamp}"));
        let moved_to = fs::rename(&self.path, &aside).ok().map(|()| aside);
        Loaded::Corrupt { reason, moved_to }
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
        }
    }

    #[test]
    fn saved_entries_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("sub/reg.json"));
        assert!(matches!(reg.load(), Loaded::Fresh));
        reg.save(&[entry(10)]).unwrap();
        reg.save(&[entry(20)]).unwrap();
        match reg.load() {
            Loaded::Ok(files) => assert_eq!(files, vec![entry(20)]),
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
        match Registry::new(path).load() {
            Loaded::Ok(files) => assert_eq!(files[0].offset, 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_registry_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reg.json");
        fs::write(&path, b"{not json").unwrap();
        let reg = Registry::new(path.clone());
        match reg.load() {
            Loaded::Corrupt {
                moved_to: Some(aside),
                reason,
            } => {
                assert!(aside.exists());
                assert!(reason.contains("invalid JSON"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
        assert!(matches!(reg.load(), Loaded::Fresh));
    }

    #[test]
    fn a_stale_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("reg.json"));
        reg.save(&[entry(3)]).unwrap();
        fs::write(dir.path().join("reg.json.tmp"), b"garbage").unwrap();
        assert!(matches!(reg.load(), Loaded::Ok(_)));
    }
}
