//! The dead-letter file: events that cannot be delivered however often they
//! are retried (a mapping conflict, a message too large for the broker),
//! written with the reason as NDJSON, so nothing is dropped silently and they
//! can be replayed once the cause is fixed. The file is rotated by size.
//!
//! This module owns the record format both ways: outputs write records
//! ([`DeadLetters`]), the `dead_letter` input reads them back
//! ([`parse_record`]). A record is
//! `{"@timestamp", "pipeline", "stage", "reason", "status"?, "error_type"?,
//! "index"?, "event": {…the event, with its "@metadata"}}`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::event::json::WithMetadata;
use crate::event::{Event, Map};

/// One dead-lettered event and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub stage: &'static str,
    pub reason: String,
    /// HTTP status of the item, for Elasticsearch rejections.
    pub status: Option<u16>,
    /// Elasticsearch's `error.type`.
    pub error_type: Option<String>,
    pub index: Option<String>,
    pub event: Event,
}

impl DeadLetter {
    fn record<'a>(&'a self, pipeline: &'a str, output: Option<&'a str>) -> RecordOut<'a> {
        RecordOut {
            timestamp: crate::event::Value::Time(chrono::Utc::now()),
            pipeline,
            stage: self.stage,
            output,
            reason: &self.reason,
            status: self.status,
            error_type: self.error_type.as_deref(),
            index: self.index.as_deref(),
            event: WithMetadata(&self.event),
        }
    }
}

/// A record as written, keys in the order of the format above.
#[derive(Serialize)]
struct RecordOut<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: crate::event::Value,
    pipeline: &'a str,
    stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: WithMetadata<'a>,
}

/// One dead-letter record, as far as replay needs it.
#[derive(Debug, Deserialize)]
struct Record {
    event: Event,
    #[serde(flatten)]
    why: serde_json::Map<String, serde_json::Value>,
}

/// The event of one dead-letter line, or why the line is not one.
pub fn parse_record(line: &str) -> Result<Event, String> {
    let record: Record = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let mut event = record.event;
    let mut why = Map::new();
    for key in [
        "reason",
        "status",
        "error_type",
        "index",
        "pipeline",
        "stage",
    ] {
        if let Some(v) = record.why.get(key) {
            why.insert(key.into(), v);
        }
    }
    event.metadata.insert("dead_letter".into(), why);
    Ok(event)
}

struct Writer {
    pipeline: Arc<str>,
    path: PathBuf,
    max_bytes: u64,
    /// Rotated files kept besides the current one.
    keep: usize,
    file: Option<(File, u64)>,
    written: u64,
    /// Records removed by rotation since start.
    evicted: u64,
}

/// A shared handle on one dead-letter file. The file is created on the first
/// record, so pipelines that never dead-letter need no writable state.
#[derive(Clone)]
pub struct DeadLetters {
    pipeline: Arc<str>,
    /// The output writing through this handle, named in its records.
    output: Option<Arc<str>>,
    writer: Arc<Mutex<Writer>>,
}

impl DeadLetters {
    /// A file rotated at `max_bytes`, keeping `keep` rotated files.
    pub fn new(pipeline: &str, path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        DeadLetters {
            pipeline: pipeline.into(),
            output: None,
            writer: Arc::new(Mutex::new(Writer {
                pipeline: pipeline.into(),
                path,
                max_bytes,
                keep,
                file: None,
                written: 0,
                evicted: 0,
            })),
        }
    }

    /// The same file, for records written by the output `label`.
    pub fn for_output(&self, label: &str) -> Self {
        DeadLetters {
            output: Some(label.into()),
            ..self.clone()
        }
    }

    /// The output these records are written for, if named.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    pub fn path(&self) -> PathBuf {
        self.writer
            .lock()
            .map(|w| w.path.clone())
            .unwrap_or_default()
    }

    /// Records evicted by rotation since start.
    pub fn evicted(&self) -> u64 {
        self.writer.lock().map(|w| w.evicted).unwrap_or(0)
    }

    /// Records written since start.
    pub fn count(&self) -> u64 {
        self.writer.lock().map(|w| w.written).unwrap_or(0)
    }

    /// Appends the records and syncs them to disk; only then may the caller
    /// acknowledge the events. Says what happened (after the write, so
    /// that the log never claims a write that then failed).
    pub async fn write(&self, records: Vec<DeadLetter>) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (stage, first_reason) = (records[0].stage, records[0].reason.clone());
        let path = self.path();
        let result = self.append(records).await;
        match &result {
            Ok(count) => tracing::error!(
                stage,
                events = count,
                path = %path.display(),
                %first_reason,
                "Events refused for good were written to the dead-letter file."
            ),
            Err(e) => tracing::error!(
                stage,
                path = %path.display(),
                error = %e,
                %first_reason,
                "Events refused for good could NOT be written to the dead-letter file; they stay unacknowledged and are read again after a restart."
            ),
        }
        result.map(|_| ())
    }

    async fn append(&self, records: Vec<DeadLetter>) -> io::Result<u64> {
        let mut body = Vec::new();
        for record in &records {
            serde_json::to_writer(
                &mut body,
                &record.record(&self.pipeline, self.output.as_deref()),
            )?;
            body.push(b'\n');
        }
        let writer = Arc::clone(&self.writer);
        let count = records.len() as u64;
        tokio::task::spawn_blocking(move || {
            let mut w = writer
                .lock()
                .map_err(|_| io::Error::other("dead-letter writer poisoned"))?;
            w.append(&body)?;
            w.written += count;
            Ok::<_, io::Error>(())
        })
        .await
        .map_err(io::Error::other)??;
        // Counted once on disk, not before.
        for record in &records {
            metrics::counter!("logpipe_dead_letters_total", "pipeline" => self.pipeline.to_string(), "stage" => record.stage)
                .increment(1);
        }
        Ok(count)
    }
}

impl Writer {
    fn append(&mut self, body: &[u8]) -> io::Result<()> {
        if let Some((_, size)) = &self.file {
            if *size > 0 && size + body.len() as u64 > self.max_bytes {
                self.file = None;
                self.rotate()?;
            }
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let size = file.metadata()?.len();
            self.file = Some((file, size));
        }
        let Some((file, size)) = self.file.as_mut() else {
            return Err(io::Error::other("dead-letter file not open"));
        };
        file.write_all(body)?;
        file.sync_data()?;
        *size += body.len() as u64;
        Ok(())
    }
}

impl Writer {
    /// Shifts `path` to `path.1`, `.1` to `.2`, …; the file past `keep` is
    /// evicted: its records are gone, so that is logged and counted.
    fn rotate(&mut self) -> io::Result<()> {
        let path = &self.path;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        let oldest = if self.keep == 0 {
            path.clone()
        } else {
            numbered(self.keep)
        };
        match evict(&oldest) {
            Ok(Some((records, bytes))) => {
                self.evicted += records;
                tracing::warn!(
                    pipeline = %self.pipeline,
                    path = %oldest.display(),
                    records,
                    bytes,
                    keep = self.keep,
                    "Dead-letter file evicted by rotation: its records are gone (raise dead_letter_max_files or dead_letter_max_bytes, or replay dead letters sooner)."
                );
                metrics::counter!("logpipe_dead_letter_evicted_records_total", "pipeline" => self.pipeline.to_string())
                    .increment(records);
                metrics::counter!("logpipe_dead_letter_evicted_files_total", "pipeline" => self.pipeline.to_string())
                    .increment(1);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, path = %oldest.display(), error = %e, "Cannot evict the oldest dead-letter file; rotation goes on without it.")
            }
        }
        if self.keep == 0 {
            return Ok(());
        }
        for n in (1..self.keep).rev() {
            match fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(path, numbered(1))
    }
}

/// Removes `path` if it exists; says how many records and bytes went.
fn evict(path: &Path) -> io::Result<Option<(u64, u64)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = file.metadata()?.len();
    let mut records = 0u64;
    let mut reader = io::BufReader::with_capacity(64 * 1024, file);
    loop {
        let chunk = io::BufRead::fill_buf(&mut reader)?;
        if chunk.is_empty() {
            break;
        }
        records += memchr::memchr_iter(b'\n', chunk).count() as u64;
        let n = chunk.len();
        io::BufRead::consume(&mut reader, n);
    }
    fs::remove_file(path)?;
    Ok(Some((records, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(reason: &str) -> DeadLetter {
        DeadLetter {
            stage: "output.elasticsearch",
            reason: reason.into(),
            status: Some(400),
            error_type: Some("mapper_parsing_exception".into()),
            index: Some("httpd_access-2026.11.25".into()),
            event: Event::from_message("x"),
        }
    }

    #[tokio::test]
    async fn records_carry_the_event_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl/p.ndjson");
        let dl = DeadLetters::new("p", path.clone(), 1 << 20, 5);
        dl.write(vec![record("failed to parse field [status]")])
            .await
            .unwrap();
        // A file that cannot be created is an error, not a claim of success.
        let blocked = dir.path().join("file");
        fs::write(&blocked, b"").unwrap();
        let cannot = DeadLetters::new("p", blocked.join("sub/p.ndjson"), 1 << 20, 5);
        assert!(cannot.write(vec![record("x")]).await.is_err());
        assert_eq!(cannot.count(), 0);
        let text = fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["reason"], "failed to parse field [status]");
        assert_eq!(v["status"], 400);
        assert_eq!(v["error_type"], "mapper_parsing_exception");
        assert_eq!(v["event"]["message"], "x");
        assert_eq!(dl.count(), 1);
    }

    #[tokio::test]
    async fn files_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.ndjson");
        let dl = DeadLetters::new("p", path.clone(), 300, 5);
        for i in 0..6 {
            dl.write(vec![record(&format!("reason {i}"))])
                .await
                .unwrap();
        }
        assert!(PathBuf::from(format!("{}.1", path.display())).exists());
        assert!(fs::metadata(&path).unwrap().len() <= 600);
        assert_eq!(dl.count(), 6);
    }

    /// Records on disk plus records evicted is every record written, for
    /// every number of rotated files kept, 0 included.
    #[tokio::test]
    async fn evictions_are_counted_to_the_record() {
        for keep in [0, 1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.ndjson");
            let dl = DeadLetters::new("p", path.clone(), 300, keep);
            for i in 0..20 {
                dl.write(vec![record(&format!("reason {i}"))])
                    .await
                    .unwrap();
            }
            let mut on_disk = 0;
            let mut files = 0;
            for entry in fs::read_dir(dir.path()).unwrap() {
                files += 1;
                on_disk += fs::read_to_string(entry.unwrap().path())
                    .unwrap()
                    .lines()
                    .count() as u64;
            }
            assert_eq!(files, keep + 1, "keep {keep}");
            assert!(dl.evicted() > 0, "keep {keep}: 20 records cannot fit");
            assert_eq!(on_disk + dl.evicted(), 20, "keep {keep}");
        }
    }

    #[tokio::test]
    async fn records_name_the_output_that_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.ndjson");
        let dl = DeadLetters::new("p", path.clone(), 1 << 20, 5);
        dl.for_output("archive")
            .write(vec![record("x")])
            .await
            .unwrap();
        dl.write(vec![record("y")]).await.unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["output"], "archive");
        assert!(lines[1].get("output").is_none());
        assert_eq!(dl.count(), 2, "one writer behind both handles");
    }

    #[test]
    fn records_become_their_original_events() {
        let cases = [
            (
                json!({"reason": "failed to parse", "status": 400, "error_type": "mapper_parsing_exception",
                       "index": "httpd_access-2026.11.25", "pipeline": "p", "stage": "output.elasticsearch",
                       "event": {"message": "x", "@timestamp": "2026-11-25T23:59:59.000Z", "@metadata": {"_id": "abc"}}}),
                json!({"message": "x", "@timestamp": "2026-11-25T23:59:59.000Z"}),
                Some("abc"),
            ),
            (
                json!({"reason": "too large", "event": {"message": "y"}}),
                json!({"message": "y"}),
                None,
            ),
        ];
        for (record, fields, id) in cases {
            let event = parse_record(&record.to_string()).unwrap();
            assert_eq!(event.fields, *fields.as_object().unwrap());
            assert_eq!(event.id(), id);
            assert_eq!(
                event.metadata["dead_letter"]["reason"], record["reason"],
                "the reason travels in metadata"
            );
        }
    }

    #[test]
    fn lines_that_are_not_records_are_refused() {
        for line in ["", "{}", "not json", "{\"event\": 3}"] {
            assert!(parse_record(line).is_err(), "{line}");
        }
    }
}
