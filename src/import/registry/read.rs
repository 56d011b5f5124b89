//! The on-disk formats of Filebeat's registry, read into [`FbEntry`]s.
//!
//! - **6.x**: `${path.data}/registry` is one file, a JSON array of the `log`
//!   input's states: `{"source", "offset", "timestamp" (RFC 3339), "ttl"
//!   (nanoseconds, -1 never), "type", "meta", "FileStateOS": {"inode",
//!   "device"}}`.
//! - **7.0–7.8** (version "0"): the same array in
//!   `registry/filebeat/data.json`, next to `meta.json` `{"version": "0"}`;
//!   states gained `"id"` and `"identifier_name"` later on.
//! - **7.9 and later** (version "1", libbeat's memlog store) in
//!   `registry/filebeat`: `meta.json` `{"version": "1"}`; snapshots named
//!   `<txid>.json`, each a JSON array of `{"_key": <key>, …value fields}`;
//!   `active.dat` holding the path of the newest snapshot; `log.json`, the
//!   operations since, two JSON documents each: a header
//!   `{"op": "set"|"remove", "id": <txid>}`, then `{"k": <key>, "v": {…}}`
//!   for set and `{"k": <key>}` for remove (field names as libbeat's
//!   go-structform writes them, matched regardless of case as Go's decoder
//!   does). Filebeat loads the snapshot with the highest txid and replays
//!   the operations with ids above it, which must run on without a gap; a
//!   broken or cut-short operation ends the replay with the state so far
//!   (Filebeat does the same, after a crash mid-write). This reads them the
//!   same way; `active.dat` is only looked at to say when it disagrees.
//!
//! Memlog keys and values:
//! - `filebeat::logs::<id>` (the `log` input; `<id>` is
//!   `native::<inode>-<device>` by default) with the state of the arrays
//!   above (`timestamp` a pair of integers there);
//! - `filestream::<input id>::<identity>` with `<identity>` one of
//!   `native::<inode>-<device>`, `fingerprint::<hex sha256>`,
//!   `path::<path>`, `inode_marker::…`: the value is `{"ttl", "updated",
//!   "cursor": {"offset"} (null until something was acknowledged),
//!   "meta": {"source", "identifier_name"}}`.
//!
//! Other keys (other inputs' cursors: journald, aws-s3, …) are not files
//! and are left alone.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{FbEntry, FbIdentity, FbInput, Format, Read};
use crate::config::{Diagnostic, Severity, Source};

fn error(path: &Path, message: impl Into<String>) -> Diagnostic {
    Source::new(path, "").error(message)
}

fn warning(path: &Path, message: impl Into<String>) -> Diagnostic {
    Source::new(path, "").diagnostic(None, Severity::Warning, message)
}

fn read_json(path: &Path) -> Result<Value, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| error(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| Diagnostic {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        severity: Severity::Error,
        message: format!("invalid JSON: {e}"),
    })
}

/// The `version` of a store's `meta.json`.
pub fn meta_version(meta: &Path) -> Result<String, Diagnostic> {
    let value = read_json(meta)?;
    // Go's decoder matches `Version` too.
    let version = value
        .as_object()
        .and_then(|o| field(o, "version"))
        .ok_or_else(|| error(meta, "no \"version\" in the registry's meta.json"))?;
    Ok(match version {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A field by name, regardless of case (as Go's encoding/json matches).
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The state array of 6.x (`registry`) and 7.0–7.8 (`data.json`).
pub fn legacy(path: &Path, format: Format) -> Result<Read, Diagnostic> {
    let value = read_json(path)?;
    let Value::Array(states) = value else {
        return Err(error(
            path,
            "not a Filebeat registry: expected a JSON array of file states",
        ));
    };
    let mut read = Read {
        format,
        from: path.to_path_buf(),
        entries: Vec::new(),
        notes: Vec::new(),
    };
    for (i, state) in states.iter().enumerate() {
        let key = format!("#{i}");
        match state.as_object().map(|o| log_state(&key, o)) {
            Some(Ok(entry)) => read.entries.push(entry),
            Some(Err(why)) => read
                .notes
                .push(warning(path, format!("state {key} left out: {why}"))),
            None => read.notes.push(warning(
                path,
                format!("state {key} left out: not an object"),
            )),
        }
    }
    Ok(read)
}

/// A `log` input state (array entry or memlog value).
fn log_state(key: &str, state: &Map<String, Value>) -> Result<FbEntry, String> {
    let source = field(state, "source")
        .and_then(Value::as_str)
        .ok_or("no \"source\"")?;
    let offset = field(state, "offset")
        .and_then(Value::as_u64)
        .ok_or("no \"offset\"")?;
    let os = field(state, "FileStateOS").and_then(Value::as_object);
    let inode = os.and_then(|os| {
        Some((
            field(os, "inode")?.as_u64()?,
            field(os, "device")?.as_u64()?,
        ))
    });
    let name = field(state, "identifier_name")
        .and_then(Value::as_str)
        .unwrap_or("native");
    let identity = match (name, inode) {
        ("native", Some((inode, device))) => FbIdentity::Native { inode, device },
        ("native", None) => return Err("no \"FileStateOS\" inode and device".into()),
        (other, inode) => FbIdentity::Other {
            name: other.to_owned(),
            inode,
        },
    };
    Ok(FbEntry {
        key: key.to_owned(),
        input: FbInput::Log,
        source: PathBuf::from(source),
        offset,
        identity,
        ttl: field(state, "ttl").and_then(Value::as_i64),
        timestamp: field(state, "timestamp").map(render_time),
    })
}

fn render_time(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A filestream value under `filestream::<id>::<identity>`.
fn filestream_state(key: &str, value: &Map<String, Value>) -> Result<FbEntry, String> {
    let rest = key
        .strip_prefix("filestream::")
        .ok_or("not a filestream key")?;
    // The input id comes first and may itself hold `::`; the identity is
    // the last known identifier name in the key.
    let names = ["native", "fingerprint", "path", "inode_marker"];
    let (id, name, tail) = names
        .iter()
        .filter_map(|n| {
            let marker = format!("::{n}::");
            rest.rfind(&marker)
                .map(|at| (&rest[..at], *n, &rest[at + marker.len()..]))
        })
        .max_by_key(|(id, _, _)| id.len())
        .ok_or("no identity (native, fingerprint, path, inode_marker) in the key")?;
    let meta = field(value, "meta").and_then(Value::as_object);
    let source = meta
        .and_then(|m| field(m, "source"))
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .or_else(|| (name == "path").then(|| PathBuf::from(tail)))
        .ok_or("no \"meta\".\"source\"")?;
    let offset = match field(value, "cursor") {
        // Nothing acknowledged yet: Filebeat would start at 0.
        None | Some(Value::Null) => 0,
        Some(cursor) => cursor
            .as_object()
            .and_then(|c| field(c, "offset"))
            .and_then(Value::as_u64)
            .ok_or("a \"cursor\" without an \"offset\"")?,
    };
    let identity = match name {
        "native" => {
            let (inode, device) = tail
                .split_once('-')
                .and_then(|(i, d)| Some((i.parse().ok()?, d.parse().ok()?)))
                .ok_or("a native identity that is not <inode>-<device>")?;
            FbIdentity::Native { inode, device }
        }
        "fingerprint" => FbIdentity::Fingerprint(tail.to_ascii_lowercase()),
        other => FbIdentity::Other {
            name: other.to_owned(),
            inode: None,
        },
    };
    Ok(FbEntry {
        key: key.to_owned(),
        input: FbInput::Filestream { id: id.to_owned() },
        source,
        offset,
        identity,
        ttl: field(value, "ttl").and_then(Value::as_i64),
        timestamp: field(value, "updated").map(render_time),
    })
}

/// The entry of a memlog key and value; `None` for keys that are not files.
fn memlog_entry(key: &str, value: &Map<String, Value>) -> Option<Result<FbEntry, String>> {
    if key.starts_with("filebeat::logs::") {
        Some(log_state(key, value))
    } else if key.starts_with("filestream::") {
        Some(filestream_state(key, value))
    } else {
        None
    }
}

/// The memlog store in `home` (7.9 and later).
pub fn memlog(home: &Path) -> Result<Read, Diagnostic> {
    let mut notes = Vec::new();
    let mut snapshots: Vec<(u64, PathBuf)> = std::fs::read_dir(home)
        .map_err(|e| error(home, format!("cannot read the directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let txid = p
                .file_name()?
                .to_str()?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            p.is_file().then_some((txid, p))
        })
        .collect();
    snapshots.sort();
    let mut table: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut txid = 0;
    if let Some((id, snapshot)) = snapshots.last() {
        txid = *id;
        let active = home.join("active.dat");
        if let Ok(named) = std::fs::read_to_string(&active) {
            let named = Path::new(named.trim());
            if named.file_name() != snapshot.file_name() {
                notes.push(warning(
                    &active,
                    format!(
                    "names {}, but the newest snapshot is {}: read the newest, as Filebeat does",
                    named.display(),
                    snapshot.display()
                ),
                ));
            }
        }
        let Value::Array(items) = read_json(snapshot)? else {
            return Err(error(
                snapshot,
                "not a memlog snapshot: expected a JSON array",
            ));
        };
        for item in items {
            let Value::Object(mut object) = item else {
                continue;
            };
            if let Some(Value::String(key)) = object.remove("_key") {
                set(&mut table, key, object);
            }
        }
    }
    let log = home.join("log.json");
    match std::fs::read(&log) {
        Ok(bytes) => replay(&log, &bytes, txid, &mut table, &mut notes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(&log, format!("cannot read: {e}"))),
    }
    let mut entries = Vec::new();
    for (key, value) in &table {
        match memlog_entry(key, value) {
            Some(Ok(entry)) => entries.push(entry),
            Some(Err(why)) => notes.push(warning(home, format!("key {key} left out: {why}"))),
            None => {}
        }
    }
    Ok(Read {
        format: Format::Memlog,
        from: home.to_path_buf(),
        entries,
        notes,
    })
}

fn set(table: &mut Vec<(String, Map<String, Value>)>, key: String, value: Map<String, Value>) {
    match table.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => table.push((key, value)),
    }
}

/// Applies the operations of `log.json` with ids above `txid`.
fn replay(
    log: &Path,
    bytes: &[u8],
    mut txid: u64,
    table: &mut Vec<(String, Map<String, Value>)>,
    notes: &mut Vec<Diagnostic>,
) {
    let mut docs = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let cut = |why: String, notes: &mut Vec<Diagnostic>| {
        notes.push(warning(
            log,
            format!("{why}: the operations after it are not applied (Filebeat stops there too)"),
        ));
    };
    loop {
        let header = match docs.next() {
            None => return,
            Some(Ok(Value::Object(h))) => h,
            Some(Ok(_)) => return cut("an operation header that is not an object".into(), notes),
            Some(Err(e)) => return cut(format!("a broken operation at line {}", e.line()), notes),
        };
        let op = field(&header, "op").and_then(Value::as_str).unwrap_or("");
        let Some(id) = field(&header, "id").and_then(Value::as_u64) else {
            return cut("an operation without an id".into(), notes);
        };
        let body = match docs.next() {
            Some(Ok(Value::Object(b))) => b,
            Some(Err(e)) => {
                return cut(
                    format!("operation {id} cut short at line {}", e.line()),
                    notes,
                )
            }
            _ => return cut(format!("operation {id} has no body"), notes),
        };
        if id <= txid {
            continue; // already in the snapshot
        }
        if id != txid + 1 {
            return cut(
                format!("operation {id} follows {txid} (a gap in the ids)"),
                notes,
            );
        }
        txid = id;
        let Some(key) = field(&body, "k").and_then(Value::as_str).map(str::to_owned) else {
            return cut(format!("operation {id} without a key"), notes);
        };
        match op {
            "set" => {
                let value = field(&body, "v")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                set(table, key, value);
            }
            "remove" => table.retain(|(k, _)| *k != key),
            other => return cut(format!("operation {id} is an unknown {other:?}"), notes),
        }
    }
}
