//! The cutover through the binary: a Filebeat memlog registry written from
//! the real inodes and devices of log files (one rotated since Filebeat
//! last wrote it, one truncated, one Filebeat never saw), `logpipe import
//! --filebeat-registry` seeding the checkpoints, then `logpipe run` on the
//! files: exactly the lines after Filebeat's offsets come out, none before,
//! none missing, none twice. Also: --dry-run writes nothing, an existing
//! checkpoint is not replaced without --force, a running Filebeat (its lock
//! held) is refused, and with the config import each file goes to the
//! pipeline whose input follows it.

mod common;
mod file_support;

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{logpipe, temp_dir};
use file_support::{key_and_value, memlog, message, Run};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn line(tag: &str, i: usize) -> String {
    format!("{tag} {i:04} {}\n", "x".repeat(30))
}

/// Writes lines `from..to` of `tag` to `path`; returns the offset just
/// past each line written.
fn write(path: &Path, tag: &str, from: usize, to: usize) -> Vec<u64> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut ends = Vec::new();
    for i in from..to {
        f.write_all(line(tag, i).as_bytes()).unwrap();
        ends.push(f.metadata().unwrap().len());
    }
    ends
}

fn import(registry: &Path, state: &Path, extra: &[&str]) -> Output {
    logpipe()
        .arg("import")
        .arg("--filebeat-registry")
        .arg(registry)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .output()
        .unwrap()
}

/// The table row of `file`.
fn row<'a>(stdout: &'a str, file: &Path) -> &'a str {
    let name = format!("{} ", file.display());
    stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("no row for {}:\n{stdout}", file.display()))
}

struct Host {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    data: PathBuf,
    state: PathBuf,
    pipeline: PathBuf,
    /// The lines logpipe must send, as Filebeat left them.
    expected: Vec<String>,
}

/// Log files and a registry: `access_log.1` was `access_log` when Filebeat
/// wrote its snapshot (it stood at line 150 of 200), the new `access_log`
/// is in log.json (at line 40 of 100), `error_log` at line 10 of 30 and
/// then read to its end (30 of 30), `ssl_log` was truncated below
/// Filebeat's offset, `new_log` Filebeat never saw.
fn host() -> Host {
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    let data = dir.path().join("filebeat");
    std::fs::create_dir_all(&logs).unwrap();
    let access = logs.join("access_log");
    let old = write(&access, "old", 0, 200);
    let snapshot_old = key_and_value(&access, &access, old[149]);
    std::fs::rename(&access, logs.join("access_log.1")).unwrap();
    let new = write(&access, "new", 0, 100);
    let error = logs.join("error_log");
    let err = write(&error, "err", 0, 30);
    let ssl = logs.join("ssl_log");
    let ssl_ends = write(&ssl, "ssl", 0, 50);
    let ssl_entry = key_and_value(&ssl, &ssl, ssl_ends[49]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ssl)
        .unwrap()
        .set_len(ssl_ends[9])
        .unwrap();
    write(&logs.join("new_log"), "fresh", 0, 5);
    memlog(
        &data,
        &[snapshot_old, key_and_value(&error, &error, err[9])],
        &[
            key_and_value(&access, &access, new[39]),
            ssl_entry,
            key_and_value(&error, &error, err[29]),
        ],
    );
    let state = dir.path().join("state");
    let pipeline = file_support::pipeline(
        dir.path(),
        &[&logs.join("*")],
        "exit_after_eof = true\nid = \"t\"",
    );
    let mut expected: Vec<String> = Vec::new();
    expected.extend((150..200).map(|i| line("old", i)));
    expected.extend((40..100).map(|i| line("new", i)));
    expected.extend((0..10).map(|i| line("ssl", i)));
    expected.extend((0..5).map(|i| line("fresh", i)));
    Host {
        _dir: dir,
        logs,
        data,
        state,
        pipeline,
        expected: expected
            .into_iter()
            .map(|l| l.trim_end().to_owned())
            .collect(),
    }
}

#[test]
fn logpipe_continues_exactly_where_filebeats_registry_stands() {
    let h = host();
    let registry = h.data.join("registry");
    let pipelines = ["--pipelines", h.pipeline.to_str().unwrap()];

    // --dry-run: the table, nothing written.
    let dry: Vec<&str> = pipelines.iter().copied().chain(["--dry-run"]).collect();
    let out = import(&registry, &h.state, &dry);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the truncated file is listed\n{stdout}{stderr}"
    );
    assert!(stdout.starts_with("FILE"), "{stdout}");
    let rotated = row(&stdout, &h.logs.join("access_log.1"));
    assert!(
        rotated.contains(&format!(
            "continue at 6000 (rotated: Filebeat saw it as {}) [tail/t]",
            h.logs.join("access_log").display()
        )),
        "{rotated}"
    );
    assert!(row(&stdout, &h.logs.join("access_log")).contains(" continue at 1600 [tail/t]"));
    assert!(row(&stdout, &h.logs.join("error_log"))
        .contains("continue at 1200, read to its end [tail/t]"));
    let ssl = row(&stdout, &h.logs.join("ssl_log"));
    assert!(
        ssl.contains("skip: truncated: Filebeat's offset 2000 is past the end (400 bytes)"),
        "{ssl}"
    );
    assert!(row(&stdout, &h.logs.join("new_log"))
        .contains("read from the start: not in Filebeat's registry [tail/t]"));
    assert!(
        stderr.contains("Filebeat 7.9+ memlog registry (version 1) (4 file state(s))"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 file(s) would continue at Filebeat's offsets, 1 listed to look at."),
        "{stderr}"
    );
    assert!(!h.state.exists(), "--dry-run wrote something");

    let out = import(&registry, &h.state, &pipelines);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let written = h.state.join("checkpoints/tail/t.json");
    assert!(text(&out.stdout).contains(&format!("wrote {} (3 file(s))", written.display())));
    let seeded = std::fs::read(&written).unwrap();

    // Not over an existing checkpoint without --force.
    let out = import(&registry, &h.state, &pipelines);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("t.json: error: a logpipe checkpoint registry exists"));
    assert_eq!(std::fs::read(&written).unwrap(), seeded);

    let events = Run::start(&h.pipeline, &h.state).finish();
    let got: Vec<&str> = events.iter().map(message).collect();
    let unique: HashSet<&str> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "lines sent twice");
    let mut got: Vec<String> = got.into_iter().map(str::to_owned).collect();
    let mut expected = h.expected.clone();
    got.sort();
    expected.sort();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "exactly the lines after Filebeat's offsets");
}

#[test]
fn a_running_filebeat_is_refused_and_nothing_is_written() {
    let h = host();
    let lock = std::fs::File::open(h.data.join("filebeat.lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    let taken = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(taken, 0);
    let out = import(
        &h.data,
        &h.state,
        &["--pipelines", h.pipeline.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: error: Filebeat is running (it holds this lock): stop it first",
            h.data.join("filebeat.lock").display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!h.state.exists());
    drop(lock);
    let out = import(
        &h.data,
        &h.state,
        &["--pipelines", h.pipeline.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn with_the_config_import_each_file_goes_to_the_pipeline_that_follows_it() {
    let h = host();
    let fb = h.logs.parent().unwrap().join("filebeat.yml");
    std::fs::write(
        &fb,
        format!(
            "filebeat.inputs:\n- type: log\n  paths: [{}/access_log*]\n  tags: [httpd_access]\n- type: log\n  paths: [{}/error_log]\n  tags: [httpd_error]\noutput.kafka:\n  hosts: [\"k:9092\"]\n  topic: httpd\n",
            h.logs.display(),
            h.logs.display()
        ),
    )
    .unwrap();
    let out_dir = h.logs.parent().unwrap().join("pipelines");
    let out = import(
        &h.data,
        &h.state,
        &[
            "--filebeat",
            fb.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        row(&stdout, &h.logs.join("access_log")).contains(" [httpd_access/"),
        "{stdout}"
    );
    assert!(
        row(&stdout, &h.logs.join("access_log.1")).contains(" [httpd_access/"),
        "{stdout}"
    );
    assert!(
        row(&stdout, &h.logs.join("error_log")).contains(" [httpd_error/"),
        "{stdout}"
    );
    assert!(
        row(&stdout, &h.logs.join("ssl_log")).contains("skip: truncated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# ==> "),
        "the pipeline files are printed too"
    );
    assert!(!out_dir.exists() && !h.state.exists());
}

/// The snapshot and log of [`host`]'s registry as the array of states of
/// Filebeat 6.x (the `registry` file) or 7.0–7.8 (`data.json`, version "0").
fn as_array(h: &Host) -> String {
    let home = h.data.join("registry/filebeat");
    let snapshot = std::fs::read_to_string(home.join("1.json")).unwrap();
    let mut states: Vec<serde_json::Value> = serde_json::from_str(&snapshot).unwrap();
    let log = std::fs::read_to_string(home.join("log.json")).unwrap();
    for op in log.lines().skip(1).step_by(2) {
        let op: serde_json::Value = serde_json::from_str(op).unwrap();
        states.retain(|s| s["_key"] != op["k"]);
        let mut v = op["v"].clone();
        v["_key"] = op["k"].clone();
        states.push(v);
    }
    for s in &mut states {
        s.as_object_mut().unwrap().remove("_key");
        s["timestamp"] = "2020-05-04T08:00:01.000000001Z".into();
    }
    serde_json::to_string(&states).unwrap()
}

#[test]
fn every_registry_format_seeds_the_same_checkpoints() {
    let h = host();
    let pipelines = ["--pipelines", h.pipeline.to_str().unwrap(), "--dry-run"];
    let table = |out: &Output| {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let memlog = table(&import(&h.data, &h.state, &pipelines));
    let array = as_array(&h);

    let v6 = h.logs.parent().unwrap().join("filebeat6");
    std::fs::create_dir_all(&v6).unwrap();
    std::fs::write(v6.join("registry"), &array).unwrap();
    let out = import(&v6, &h.state, &pipelines);
    assert!(text(&out.stderr).contains("Filebeat 6.x registry file (4 file state(s))"));
    assert_eq!(table(&out), memlog);

    let v7 = h.logs.parent().unwrap().join("filebeat7/registry/filebeat");
    std::fs::create_dir_all(&v7).unwrap();
    std::fs::write(v7.join("meta.json"), r#"{"version": "0"}"#).unwrap();
    std::fs::write(v7.join("data.json"), &array).unwrap();
    let out = import(&v7, &h.state, &pipelines);
    assert!(text(&out.stderr)
        .contains("Filebeat 7.0–7.8 registry (data.json, version 0) (4 file state(s))"));
    assert_eq!(table(&out), memlog);
    assert!(memlog.contains("continue at 6000 (rotated"), "{memlog}");
}
