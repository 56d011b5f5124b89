//! `logpipe import --filebeat-registry`: the cutover. Filebeat's registry
//! (every on-disk format since 6.x, [`read`]) is read into one list of
//! [`FbEntry`]s, each matched to a file on disk ([`matching`]), and the
//! matched ones become the checkpoints of the pipelines' file inputs
//! ([`seed`]), so that `logpipe run` goes on where Filebeat's acknowledged
//! offsets stand.
//!
//! Where the registry is: `filebeat.registry.path`, default
//! `${path.data}/registry` (`/var/lib/filebeat/registry` for the packages).
//! `--filebeat-registry` takes that path, the data directory above it, or
//! the store directory below it (`registry/filebeat`).
//!
//! Nothing is read while Filebeat runs: it holds `filebeat.lock` in its data
//! directory ([`lock`]), and its registry would move on after the import.

pub mod lock;
pub mod matching;
pub mod read;
pub mod seed;

use std::path::{Path, PathBuf};

use crate::config::{Diagnostic, Source};

/// Which Filebeat input wrote an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FbInput {
    /// The `log` input (keys `filebeat::logs::…`, or an entry of the
    /// 6.x / 7.0–7.8 state arrays).
    Log,
    /// A `filestream` input, with its `id`.
    Filestream { id: String },
}

/// How Filebeat identified the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FbIdentity {
    /// Inode and device (`native`, the default of both inputs).
    Native { inode: u64, device: u64 },
    /// filestream's `fingerprint`: the hex SHA-256 of the file's first 1024
    /// bytes (Filebeat's default `offset: 0`, `length: 1024`).
    Fingerprint(String),
    /// Another identity (`path`, `inode_marker`), with its name: matched on
    /// the inode and device Filebeat recorded, when it did.
    Other {
        name: String,
        inode: Option<(u64, u64)>,
    },
}

/// One file's state in Filebeat's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FbEntry {
    /// The registry key (memlog), or `#<index>` in a state array.
    pub key: String,
    pub input: FbInput,
    /// The path Filebeat last saw the file at.
    pub source: PathBuf,
    /// Offset just past the last line Filebeat's output acknowledged.
    pub offset: u64,
    pub identity: FbIdentity,
    /// Filebeat's TTL in nanoseconds (-1: never expires; -2: set by a
    /// registry migration; 0: the state is being removed).
    pub ttl: Option<i64>,
    /// When the state last changed, as Filebeat wrote it.
    pub timestamp: Option<String>,
}

/// Which on-disk format the entries came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 6.x: one `registry` file holding a JSON array of states.
    Legacy,
    /// 7.0–7.8: `registry/filebeat/data.json`, `meta.json` version "0".
    Version0,
    /// 7.9 and later: the memlog store, `meta.json` version "1".
    Memlog,
}

impl Format {
    pub fn describe(self) -> &'static str {
        match self {
            Format::Legacy => "Filebeat 6.x registry file",
            Format::Version0 => "Filebeat 7.0–7.8 registry (data.json, version 0)",
            Format::Memlog => "Filebeat 7.9+ memlog registry (version 1)",
        }
    }
}

/// What reading a registry found.
#[derive(Debug)]
pub struct Read {
    pub format: Format,
    /// The file or directory the entries were read from.
    pub from: PathBuf,
    pub entries: Vec<FbEntry>,
    /// Warnings met while reading (a log operation cut short, an entry
    /// without an offset), with the file they are about.
    pub notes: Vec<Diagnostic>,
}

/// Where a registry of each format sits, given what the user pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Located {
    /// The 6.x registry file.
    Legacy(PathBuf),
    /// The store directory holding `meta.json`.
    Store(PathBuf),
}

fn locate(dir: &Path) -> Result<Located, Diagnostic> {
    if dir.is_file() {
        return Ok(Located::Legacy(dir.to_path_buf()));
    }
    let candidates = [
        dir.to_path_buf(),
        dir.join("filebeat"),
        dir.join("registry").join("filebeat"),
    ];
    if let Some(home) = candidates.iter().find(|c| c.join("meta.json").is_file()) {
        return Ok(Located::Store(home.clone()));
    }
    if dir.join("registry").is_file() {
        return Ok(Located::Legacy(dir.join("registry")));
    }
    if !dir.exists() {
        return Err(Source::new(dir, "").error("no such file or directory"));
    }
    Err(Source::new(dir, "").error(
        "no Filebeat registry here: looked for meta.json in it, in filebeat/ and in registry/filebeat/, and for a 6.x `registry` file — pass filebeat.registry.path (default /var/lib/filebeat/registry)",
    ))
}

/// The directories that may hold `filebeat.lock`: Filebeat's data
/// directory is the registry path's parent by default, but the user may have
/// pointed at any level.
fn data_dirs(dir: &Path, located: &Located) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    let up = |p: &Path, n: usize| {
        let mut p = p.to_path_buf();
        for _ in 0..n {
            p = p.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        p
    };
    match located {
        Located::Legacy(file) => dirs.push(up(file, 1)),
        // home = <data>/registry/filebeat
        Located::Store(home) => dirs.push(up(home, 2)),
    }
    dirs.retain(|d| d.is_dir());
    dirs.dedup();
    dirs
}

/// Reads the registry at `dir` (refusing while Filebeat runs, and a version
/// this does not know).
pub fn load(dir: &Path) -> Result<Read, Diagnostic> {
    let located = locate(dir)?;
    for data in data_dirs(dir, &located) {
        lock::refuse_if_running(&data.join("filebeat.lock"))?;
    }
    match located {
        Located::Legacy(file) => read::legacy(&file, Format::Legacy),
        Located::Store(home) => {
            let meta = home.join("meta.json");
            match read::meta_version(&meta)?.as_str() {
                "0" => read::legacy(&home.join("data.json"), Format::Version0),
                "1" => read::memlog(&home),
                other => Err(Source::new(&meta, "").error(format!(
                    "unknown registry version {other:?}: logpipe reads versions \"0\" (Filebeat 7.0–7.8) and \"1\" (7.9 and later); nothing was read"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
