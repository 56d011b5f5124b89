//! The matched entries as logpipe checkpoints: for each pipeline's file
//! input that follows a matched file, an entry of its checkpoint registry
//! (`<state-dir>/checkpoints/<pipeline>/<input id>.json`, the file the input
//! loads) under the identity the input gives that file, at Filebeat's
//! offset. The table says, per file, what logpipe will do.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use super::matching::{self, Matched, Verdict};
use super::FbEntry;
use crate::config::{Diagnostic, Source};
use crate::input::file::exclude::Exclude;
use crate::input::file::fingerprint;
use crate::input::file::registry::{Entry, FilebeatIds, Registry};
use crate::input::InputSpec;
use crate::pipeline::Pipeline;

/// One file input, and where its checkpoints go.
#[derive(Debug)]
pub struct Target {
    pub pipeline: String,
    pub input: String,
    pub registry: PathBuf,
    patterns: Vec<String>,
    exclude: Vec<Exclude>,
}

impl Target {
    /// Whether this input follows `path` (its globs match it, no exclude
    /// does), as its scan would find it.
    pub fn follows(&self, path: &Path) -> bool {
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        self.patterns
            .iter()
            .any(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches_path_with(path, options)))
            && !self.exclude.iter().any(|e| e.matches(path))
    }

    /// The regular files its globs match now.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .patterns
            .iter()
            .filter_map(|p| glob::glob(p).ok())
            .flat_map(|paths| paths.flatten())
            .filter(|p| {
                std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
                    && !self.exclude.iter().any(|e| e.matches(p))
            })
            .collect();
        files.sort();
        files.dedup();
        files
    }
}

/// The file inputs of `pipelines` that keep checkpoints.
pub fn targets(pipelines: &[Pipeline], state_dir: &Path) -> Vec<Target> {
    let mut targets = Vec::new();
    for p in pipelines {
        for input in &p.inputs {
            if let InputSpec::File(f) = input {
                if f.checkpoint {
                    targets.push(Target {
                        pipeline: p.name.clone(),
                        input: f.id.clone(),
                        registry: f.registry_file(state_dir, &p.name),
                        patterns: f.patterns.clone(),
                        exclude: f.exclude.clone(),
                    });
                }
            }
        }
    }
    targets
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub file: PathBuf,
    pub filebeat_offset: Option<u64>,
    pub size: Option<u64>,
    pub action: String,
    /// Lines may be read twice or never: the operator should look.
    pub warn: bool,
}

/// What the import will do.
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: Vec<Row>,
    /// Per checkpoint registry, its entries.
    pub writes: Vec<(PathBuf, Vec<Entry>)>,
    /// Warnings met reading the registry (printed as they were met).
    pub read_warnings: usize,
}

impl Plan {
    pub fn seeded(&self) -> usize {
        self.writes.iter().map(|(_, e)| e.len()).sum()
    }

    pub fn warnings(&self) -> usize {
        self.rows.iter().filter(|r| r.warn).count() + self.read_warnings
    }
}

/// Matches the entries and decides, per file, what logpipe will do. `host`
/// is the `host.name` Filebeat's messages carry (this host's name): with
/// it, the lines of a seeded file get the ids the index half gives
/// Filebeat's copies of them.
pub fn plan(entries: &[FbEntry], targets: &[Target], host: &str) -> Plan {
    let followed: Vec<Vec<PathBuf>> = targets.iter().map(Target::files).collect();
    let all: Vec<PathBuf> = followed.iter().flatten().cloned().collect();
    let mut plan = Plan::default();
    let mut matched: Vec<(&FbEntry, Matched)> = Vec::new();
    for entry in entries {
        match matching::judge(entry, &all) {
            Verdict::Continue(m) => matched.push((entry, m)),
            Verdict::Skip {
                path,
                size,
                why,
                warn,
            } => plan.rows.push(Row {
                file: path,
                filebeat_offset: Some(entry.offset),
                size,
                action: format!("skip: {why}"),
                warn,
            }),
        }
    }
    // Two entries for one file (a stale one left by an inode that was
    // reused, the log input's and a filestream's): the one under the
    // file's present name, then the furthest, is taken.
    matched.sort_by_key(|(e, m)| (m.renamed, std::cmp::Reverse(e.offset)));
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut seeded: Vec<Vec<Entry>> = targets.iter().map(|_| Vec::new()).collect();
    for (entry, m) in matched {
        let rotated = if m.renamed {
            format!(" (rotated: Filebeat saw it as {})", entry.source.display())
        } else {
            String::new()
        };
        let mut row = Row {
            file: m.path.clone(),
            filebeat_offset: Some(entry.offset),
            size: Some(m.size),
            action: String::new(),
            warn: false,
        };
        let into: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].follows(&m.path))
            .collect();
        if into.is_empty() {
            // Read to its end, nothing of it is lost (a rotated file the
            // pipelines' globs leave out, say); otherwise its rest is.
            row.warn = entry.offset < m.size;
            row.action = if row.warn {
                format!(
                    "skip: no file input of the pipelines follows this path ({} bytes Filebeat had not shipped are not read)",
                    m.size - entry.offset
                )
            } else {
                "skip: no file input of the pipelines follows this path (Filebeat had read it to its end)".into()
            };
            plan.rows.push(row);
            continue;
        }
        let taken = into
            .iter()
            .any(|&i| seeded[i].iter().any(|e| e.inode() == m.inode));
        if taken {
            row.action = format!(
                "skip: another Filebeat entry for this file is used (this one: {})",
                entry.key
            );
            plan.rows.push(row);
            continue;
        }
        let names: Vec<String> = into
            .iter()
            .map(|&i| format!("{}/{}", targets[i].pipeline, targets[i].input))
            .collect();
        let at_end = if entry.offset == m.size {
            ", read to its end"
        } else {
            ""
        };
        row.action = format!(
            "continue at {}{at_end}{rotated} [{}]",
            entry.offset,
            names.join(", ")
        );
        plan.rows.push(row);
        for i in into {
            seeded[i].push(Entry {
                identity: fingerprint::identity_of(m.fingerprint, m.inode),
                fp_len: m.fingerprint.len,
                fp_hash: m.fingerprint.to_hex(),
                path: m.path.clone(),
                dev: m.inode.dev,
                ino: m.inode.ino,
                offset: entry.offset,
                size: m.size,
                updated: now.clone(),
                filebeat_ids: Some(FilebeatIds {
                    host: host.to_owned(),
                    path: entry.source.to_string_lossy().into_owned(),
                }),
            });
        }
    }
    for (i, files) in followed.iter().enumerate() {
        if seeded[i].is_empty() {
            continue; // no registry written: a first start, per start_position
        }
        for file in files {
            let known = plan.rows.iter().any(|r| r.file == *file);
            if !known {
                plan.rows.push(Row {
                    file: file.clone(),
                    filebeat_offset: None,
                    size: std::fs::metadata(file).ok().map(|m| m.len()),
                    action: format!(
                        "read from the start: not in Filebeat's registry [{}/{}]",
                        targets[i].pipeline, targets[i].input
                    ),
                    warn: false,
                });
            }
        }
    }
    plan.rows.sort_by(|a, b| a.file.cmp(&b.file));
    plan.writes = targets
        .iter()
        .zip(seeded)
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(t, entries)| (t.registry.clone(), entries))
        .collect();
    plan
}

/// The table: file, Filebeat's offset, size, what logpipe will do.
pub fn table(rows: &[Row]) -> String {
    let header = ["FILE", "FILEBEAT OFFSET", "SIZE", "LOGPIPE"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            [
                r.file.display().to_string(),
                n(r.filebeat_offset),
                n(r.size),
                r.action.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = format!(
        "{:<w0$}  {:>w1$}  {:>w2$}  {}\n",
        header[0], header[1], header[2], header[3]
    );
    for c in &cells {
        out.push_str(&format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {}\n",
            c[0], c[1], c[2], c[3]
        ));
    }
    out
}

/// Refuses to replace existing checkpoints unless `force`.
pub fn check_writable(plan: &Plan, force: bool) -> Result<(), Diagnostic> {
    if force {
        return Ok(());
    }
    match plan.writes.iter().find(|(path, _)| path.exists()) {
        Some((path, _)) => Err(Source::new(path, "").error(
            "a logpipe checkpoint registry exists: nothing was written (--force replaces it with Filebeat's offsets)",
        )),
        None => Ok(()),
    }
}

/// Writes the checkpoint registries, as the file input does (atomically).
pub fn write(plan: &Plan) -> Result<(), Diagnostic> {
    for (path, entries) in &plan.writes {
        Registry::new(path.clone())
            .save(entries)
            .map_err(|e| Source::new(path, "").error(format!("cannot write: {e}")))?;
    }
    Ok(())
}
