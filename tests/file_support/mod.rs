//! Helpers for the file-input flows: a `logpipe` process whose stdout events
//! are collected by a thread, a pipeline template, and a writer that appends
//! numbered lines at a high rate while rotating its file.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{sigterm, wait_exit};

/// A pipeline file that follows `paths` and prints events with `@metadata`.
/// `extra` goes into the input table; its keys replace the defaults here.
pub fn pipeline(dir: &Path, paths: &[&Path], extra: &str) -> PathBuf {
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    let defaults: String = [
        "scan_interval = \"100ms\"",
        "poll_interval = \"20ms\"",
        "close_inactive = \"2s\"",
        "batch_events = 500",
    ]
    .iter()
    .filter(|line| {
        let key = line.split(' ').next().unwrap();
        !extra.lines().any(|l| l.starts_with(&format!("{key} ")))
    })
    .map(|line| format!("{line}\n"))
    .collect();
    let path = dir.join("tail.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "tail"
[[input]]
type = "file"
paths = [{}]
{defaults}{extra}

[[output]]
type = "stdout"
metadata = true
"#,
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

/// A running `logpipe run` whose stdout events are collected.
pub struct Run {
    child: Child,
    /// Its stderr, where it says when its signal handlers are in place.
    log: PathBuf,
    events: Arc<Mutex<Vec<Value>>>,
    collector: Option<JoinHandle<()>>,
}

impl Run {
    pub fn start(pipeline: &Path, state: &Path) -> Run {
        Run::start_with(pipeline, state, &[], None)
    }

    /// Starts with extra arguments, and as user `uid` (group `uid` too) when
    /// given: permission tests need a daemon that is not root.
    pub fn start_with(pipeline: &Path, state: &Path, extra: &[&str], uid: Option<u32>) -> Run {
        let mut command = Run::command(pipeline, state, extra);
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        Run::spawn(command, state)
    }

    /// `logpipe run PIPELINE --state-dir STATE [extra]` with stdout piped,
    /// ready for [`Run::spawn`].
    pub fn command(pipeline: &Path, state: &Path, extra: &[&str]) -> std::process::Command {
        crate::common::run_command(pipeline, state, extra, Stdio::piped())
    }

    pub fn spawn(mut command: std::process::Command, state: &Path) -> Run {
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let collector = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdout.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    // A kill -9 can cut the last line short; that batch was
                    // not acknowledged, so it is read again anyway.
                    Ok(_) if line.last() != Some(&b'\n') => break,
                    Ok(_) => {
                        let event: Value = serde_json::from_slice(&line).unwrap();
                        sink.lock().unwrap().push(event);
                    }
                }
            }
        });
        Run {
            child,
            log: state.with_extension("log"),
            events,
            collector: Some(collector),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The events so far.
    pub fn snapshot(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Waits until at least `n` events arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} events, got {}",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What logpipe logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; returns the events once logpipe exited 0.
    pub fn stop(self) -> Vec<Value> {
        let (status, events) = self.stop_status();
        assert!(status.success(), "exit status after SIGTERM: {status}");
        events
    }

    /// SIGTERM; returns the exit status and the events.
    pub fn stop_status(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        // A SIGTERM before the handlers are installed would just kill it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains("logpipe is running.")
        {
            assert!(Instant::now() < deadline, "logpipe did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        sigterm(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(60));
        (status, self.collect())
    }

    /// SIGKILL; returns the events printed before it.
    pub fn kill(mut self) -> Vec<Value> {
        self.child.kill().unwrap();
        let _ = self.child.wait();
        self.collect()
    }

    /// Waits for a one-shot (`exit_after_eof`) run to finish.
    pub fn finish(mut self) -> Vec<Value> {
        let status = wait_exit(&mut self.child, Duration::from_secs(60));
        assert!(status.success(), "exit status: {status}");
        self.collect()
    }

    fn collect(&mut self) -> Vec<Value> {
        if let Some(c) = self.collector.take() {
            c.join().unwrap();
        }
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn message(event: &Value) -> &str {
    event["message"].as_str().unwrap()
}

pub fn id(event: &Value) -> &str {
    event["@metadata"]["_id"].as_str().unwrap()
}

pub fn offset(event: &Value) -> u64 {
    event["log"]["offset"].as_u64().unwrap()
}

/// The `(generation, sequence)` of a line written by [`Writer`].
pub fn numbered(event: &Value) -> (u64, u64) {
    let text = message(event);
    let mut parts = text.split(' ');
    let g = parts
        .next()
        .unwrap()
        .trim_start_matches('g')
        .parse()
        .unwrap();
    let s = parts
        .next()
        .unwrap()
        .trim_start_matches('s')
        .parse()
        .unwrap();
    (g, s)
}

/// Asserts that the events carry lines `0..total` exactly once each (when
/// `exactly_once`) or at least once, and that within a generation (one
/// physical file) they arrive in the order written.
pub fn assert_complete(events: &[Value], total: u64, exactly_once: bool) {
    let mut seen = HashSet::new();
    let mut repeats = 0;
    let mut last_in_gen: HashMap<u64, u64> = HashMap::new();
    for event in events {
        let (g, s) = numbered(event);
        if !seen.insert(s) {
            repeats += 1;
            continue;
        }
        if let Some(prev) = last_in_gen.insert(g, s) {
            assert!(prev < s, "generation {g}: line {s} arrived after {prev}");
        }
    }
    let missing: Vec<u64> = (0..total).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(seen.len() as u64, total, "lines never written arrived");
    if exactly_once {
        assert_eq!(repeats, 0, "lines delivered twice");
    }
}

/// How the writer rotates its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// logrotate's default: `log.1` → `log.2` …, `log` → `log.1`, then a
    /// new `log`. The last line before the switch is written half before
    /// the rename and half after (into the renamed file, as Apache does
    /// until it reopens its logs).
    RenameCreate,
    /// logrotate's `copytruncate`: `log.1` → `log.2` …, copy `log` to
    /// `log.1`, truncate `log`; the writer keeps its handle.
    CopyTruncate,
    /// Apache `rotatelogs`: a new file per period, never renamed
    /// (`log.0001`, `log.0002`, …).
    NewFile,
    /// No rotation.
    None,
}

/// Appends `g<generation> s<sequence> <padding>` lines at full speed, in
/// writes of several lines, rotating every `every` lines.
pub struct Writer {
    pub dir: PathBuf,
    pub name: String,
    pub rotation: Rotation,
    pub every: u64,
    pub padding: usize,
}

impl Writer {
    pub fn live(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn generation_path(&self, generation: u64) -> PathBuf {
        match self.rotation {
            Rotation::NewFile => self.dir.join(format!("{}.{generation:04}", self.name)),
            _ => self.live(),
        }
    }

    fn shift(&self, generation: u64) {
        for k in (1..=generation).rev() {
            let from = self.dir.join(format!("{}.{k}", self.name));
            if from.exists() {
                std::fs::rename(&from, self.dir.join(format!("{}.{}", self.name, k + 1))).unwrap();
            }
        }
    }

    /// Writes lines `from..to` (generation numbering continues from
    /// `from / every`).
    pub fn write(&self, from: u64, to: u64) {
        let pad = "x".repeat(self.padding);
        let line = |s: u64| format!("g{} s{s:08} {pad}\n", s / self.every);
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        };
        let mut file = open(&self.generation_path(from / self.every));
        let rotating = self.rotation != Rotation::None;
        let mut chunk = String::new();
        for s in from..to {
            if rotating && s > from && s % self.every == 0 {
                file.write_all(chunk.as_bytes()).unwrap();
                chunk.clear();
                let generation = s / self.every;
                let last = line(s - 1);
                match self.rotation {
                    Rotation::RenameCreate => {
                        // The previous generation's last line, split around
                        // the rename; it belongs to the renamed file.
                        let (head, tail) = last.split_at(last.len() / 2);
                        file.write_all(head.as_bytes()).unwrap();
                        self.shift(generation);
                        std::fs::rename(self.live(), self.dir.join(format!("{}.1", self.name)))
                            .unwrap();
                        file.write_all(tail.as_bytes()).unwrap();
                        file = open(&self.live());
                    }
                    Rotation::CopyTruncate => {
                        file.write_all(last.as_bytes()).unwrap();
                        self.shift(generation);
                        std::fs::copy(self.live(), self.dir.join(format!("{}.1", self.name)))
                            .unwrap();
                        file.set_len(0).unwrap();
                    }
                    Rotation::NewFile => {
                        file.write_all(last.as_bytes()).unwrap();
                        file = open(&self.generation_path(generation));
                    }
                    Rotation::None => {}
                }
            }
            // A generation's last line is written by the rotation step.
            if rotating && (s + 1) % self.every == 0 && s + 1 < to {
                continue;
            }
            chunk.push_str(&line(s));
            if chunk.len() >= 8 * 1024 {
                file.write_all(chunk.as_bytes()).unwrap();
                chunk.clear();
            }
        }
        file.write_all(chunk.as_bytes()).unwrap();
    }
}

// ---- Filebeat registries, as `logpipe import --filebeat-registry` reads them ----

/// The memlog key and value of a `log` input state for `path` (its real
/// inode and device), recorded under `source` at `offset`.
pub fn key_and_value(path: &Path, source: &Path, offset: u64) -> (String, String) {
    let meta = std::fs::metadata(path).unwrap();
    let (ino, dev) = (meta.ino(), meta.dev());
    (
        format!("filebeat::logs::native::{ino}-{dev}"),
        format!(
            r#"{{"id":"native::{ino}-{dev}","prev_id":"","timestamp":[281470681743360,1733212800],"ttl":-1,"identifier_name":"native","source":"{}","offset":{offset},"type":"log","FileStateOS":{{"inode":{ino},"device":{dev}}}}}"#,
            source.display()
        ),
    )
}

/// A Filebeat data directory with a memlog registry: `snapshot` in
/// `1.json`, `ops` as set operations 2, 3, … in `log.json`.
pub fn memlog(data: &Path, snapshot: &[(String, String)], ops: &[(String, String)]) {
    let home = data.join("registry/filebeat");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("meta.json"), "{\"version\":\"1\"}\n").unwrap();
    let items: Vec<String> = snapshot
        .iter()
        .map(|(k, v)| format!("{{\"_key\":\"{k}\",{}", &v[1..]))
        .collect();
    std::fs::write(home.join("1.json"), format!("[\n{}\n]", items.join(",\n"))).unwrap();
    std::fs::write(
        home.join("active.dat"),
        home.join("1.json").display().to_string(),
    )
    .unwrap();
    let log: String = ops
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            format!(
                "{{\"op\":\"set\",\"id\":{}}}\n{{\"k\":\"{k}\",\"v\":{v}}}\n",
                i + 2
            )
        })
        .collect();
    std::fs::write(home.join("log.json"), log).unwrap();
    std::fs::write(data.join("filebeat.lock"), "").unwrap();
}
