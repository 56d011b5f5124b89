//! File identity through the running binary: a short file is read at once
//! under a growing identity (prefix plus inode while under 1024 bytes, the
//! full fingerprint after), with no line read twice when it crosses 1024
//! bytes, running or stopped, and none lost when it is rotated; a stored
//! offset past a file's end is a truncation; an inode reused by another
//! file of the same size is a new file.

mod common;
mod file_support;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::{temp_dir, wait_until, write_lines};
use file_support::*;
use logpipe::input::file::fingerprint::{origin_id, Fingerprint, FINGERPRINT_BYTES};
use serde_json::{json, Value};

/// Longer than any test here runs: a file read in these tests was not
/// read because `close_inactive` passed.
const NEVER: &str = "close_inactive = \"1h\"\nid = \"t\"";

fn messages(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| message(e).to_owned()).collect()
}

fn registry_path(state: &Path) -> std::path::PathBuf {
    state.join("checkpoints/tail/t.json")
}

/// The registry's entries, once it was written with `n` of them.
fn entries(state: &Path, n: usize) -> Vec<Value> {
    wait_until(
        Duration::from_secs(30),
        &format!("the registry with {n} entries"),
        || {
            let read = std::fs::read(registry_path(state))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())?;
            let files = read["files"].as_array()?;
            (files.len() == n).then(|| files.clone())
        },
    )
}

/// Asserts that every event is a distinct line with a distinct origin id.
fn assert_no_repeats(events: &[Value]) {
    let texts: HashSet<&str> = events.iter().map(message).collect();
    assert_eq!(texts.len(), events.len(), "lines read twice");
    let ids: HashSet<&str> = events.iter().map(id).collect();
    assert_eq!(ids.len(), events.len(), "origin ids repeated");
}

/// The lines of `events`, sorted: compare with [`sorted`] expectations.
fn sorted_messages(events: &[Value]) -> Vec<String> {
    let mut texts = messages(events);
    texts.sort();
    texts
}

/// `line(i)` for each `i`, sorted.
fn sorted(lines: impl IntoIterator<Item = usize>) -> Vec<String> {
    let mut texts: Vec<String> = lines.into_iter().map(line).collect();
    texts.sort();
    texts
}

fn line(i: usize) -> String {
    format!("line {i:03} {}", "x".repeat(40))
}

#[test]
fn a_short_file_is_read_at_once_and_crossing_1024_bytes_reads_nothing_twice() {
    let dir = temp_dir();
    let log = dir.path().join("error_log");
    let state = dir.path().join("state");
    write_lines(&log, (0..2).map(line));
    let pipeline = pipeline(dir.path(), &[&log], NEVER);

    // Running: the two lines leave at once, then the file crosses 1024
    // bytes while it is followed.
    let run = Run::start(&pipeline, &state);
    run.wait_for(2, Duration::from_secs(30));
    let short = entries(&state, 1);
    let identity = short[0]["identity"].as_str().unwrap().to_owned();
    assert!(short[0]["fp_len"].as_u64().unwrap() < FINGERPRINT_BYTES as u64);
    assert!(identity.ends_with(&format!("-i{}", std::fs::metadata(&log).unwrap().ino())));
    write_lines(&log, (2..30).map(line));
    run.wait_for(30, Duration::from_secs(30));
    let first = run.stop();
    assert_eq!(messages(&first), (0..30).map(line).collect::<Vec<_>>());
    assert_no_repeats(&first);

    // The entry was migrated to the full fingerprint; the identity, and so
    // the origin ids of the lines already shipped, stayed.
    let grown = entries(&state, 1);
    assert_eq!(grown[0]["identity"], identity.as_str());
    assert_eq!(grown[0]["fp_len"], FINGERPRINT_BYTES as u64);
    let content = std::fs::read(&log).unwrap();
    assert_eq!(
        grown[0]["fp_hash"],
        Fingerprint::of(&content).to_hex().as_str()
    );
    let host = first[0]["host"]["name"].as_str().unwrap();
    assert_eq!(id(&first[0]), origin_id(host, &identity, 0));

    // Stopped while short, crossing 1024 bytes while logpipe is down: the
    // second file resumes from its checkpoint under its short identity.
    let other = dir.path().join("error_log.vhost2");
    write_lines(&other, (100..102).map(line));
    let pipeline = file_support::pipeline(dir.path(), &[&dir.path().join("error_log*")], NEVER);
    let run = Run::start(&pipeline, &state);
    run.wait_for(2, Duration::from_secs(30));
    let second = run.stop();
    assert_eq!(messages(&second), [line(100), line(101)]);
    write_lines(&other, (102..130).map(line));
    write_lines(&log, [line(30)]);
    let run = Run::start(&pipeline, &state);
    run.wait_for(29, Duration::from_secs(30));
    let third = run.stop();
    assert_eq!(
        sorted_messages(&third),
        sorted((102..130).chain([30])),
        "exactly the lines written while stopped"
    );
    let all: Vec<Value> = [first, second, third].concat();
    assert_no_repeats(&all);
}

#[test]
fn rotating_short_files_loses_and_repeats_nothing() {
    let dir = temp_dir();
    let log = dir.path().join("error_log");
    let rotated = |n: u32| dir.path().join(format!("error_log.{n}"));
    let state = dir.path().join("state");
    write_lines(&log, (0..2).map(line));
    let pipeline = pipeline(dir.path(), &[&dir.path().join("error_log*")], NEVER);

    // Rename and create while running; httpd still writes to the renamed
    // file until it is reloaded.
    let run = Run::start(&pipeline, &state);
    run.wait_for(2, Duration::from_secs(30));
    std::fs::rename(&log, rotated(1)).unwrap();
    write_lines(&rotated(1), [line(2)]);
    write_lines(&log, [line(3)]);
    run.wait_for(4, Duration::from_secs(30));
    let first = run.stop();

    // And while stopped: one more line in each, then another rotation.
    write_lines(&log, [line(4)]);
    write_lines(&rotated(1), [line(5)]);
    std::fs::rename(rotated(1), rotated(2)).unwrap();
    std::fs::rename(&log, rotated(1)).unwrap();
    write_lines(&log, [line(6)]);
    let run = Run::start(&pipeline, &state);
    run.wait_for(3, Duration::from_secs(30));
    let second = run.stop();

    let all: Vec<Value> = [first, second].concat();
    assert_eq!(sorted_messages(&all), sorted(0..7));
    assert_no_repeats(&all);
}

/// A copytruncate of a short followed file: the copy starts like the
/// followed file, so it is not read as a file of its own; once the
/// truncation is seen, reading goes on in the copy where it stopped.
#[test]
fn copytruncate_of_a_short_file_repeats_nothing() {
    let dir = temp_dir();
    let log = dir.path().join("error_log");
    let state = dir.path().join("state");
    write_lines(&log, (0..3).map(line));
    let pipeline = pipeline(dir.path(), &[&dir.path().join("error_log*")], NEVER);
    let run = Run::start(&pipeline, &state);
    run.wait_for(3, Duration::from_secs(30));
    write_lines(&log, [line(3)]);
    std::fs::copy(&log, dir.path().join("error_log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, [line(4)]);
    run.wait_for(5, Duration::from_secs(30));
    let events = run.stop();
    assert_eq!(sorted_messages(&events), sorted(0..5));
    assert_no_repeats(&events);
}

#[test]
fn a_stored_offset_past_the_end_of_a_file_is_a_truncation() {
    let dir = temp_dir();
    let long = dir.path().join("access_log");
    let short = dir.path().join("error_log");
    let state = dir.path().join("state");
    // 50 bytes a line: 40 lines are 2000 bytes, 25 are 1250.
    write_lines(&long, (0..40).map(line));
    write_lines(&short, (100..103).map(line));
    let pipeline = pipeline(dir.path(), &[&dir.path().join("*_log")], NEVER);
    let run = Run::start(&pipeline, &state);
    run.wait_for(43, Duration::from_secs(30));
    let first = run.stop();
    assert_eq!(first.len(), 43);

    // Cut while logpipe is down: the long file keeps its first 1024 bytes
    // (its fingerprint) but ends before its checkpoint; the short one
    // keeps its first line.
    let cut = |path: &Path, len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    cut(&long, 25 * 50);
    cut(&short, 50);
    let run = Run::start(&pipeline, &state);
    run.wait_for(26, Duration::from_secs(30));
    let second = run.stop();
    assert_eq!(
        sorted_messages(&second),
        sorted((0..25).chain([100])),
        "both read again from their start"
    );
    // Under new identities: the repeated lines are not taken for the ones
    // shipped before (whose origin ids Elasticsearch already has).
    let before: HashSet<&str> = first.iter().map(id).collect();
    assert!(second.iter().all(|e| !before.contains(id(e))));
}

/// The registry holds an entry for the file's device and inode, read to an
/// offset equal to the file's size, but of other content: a deleted file
/// whose inode a new file of the same size got. The new file is read.
#[test]
fn an_inode_reused_by_a_file_of_the_same_size_is_a_new_file() {
    let dir = temp_dir();
    let long = dir.path().join("access_log");
    let short = dir.path().join("error_log");
    let state = dir.path().join("state");
    write_lines(&long, (0..40).map(line));
    write_lines(&short, (100..103).map(line));
    let entry = |path: &Path, other: &[u8]| {
        let meta = std::fs::metadata(path).unwrap();
        let fp = Fingerprint::of(other);
        json!({
            "identity": fp.to_hex(),
            "fp_len": fp.len,
            "fp_hash": fp.to_hex(),
            "path": path,
            "dev": meta.dev(),
            "ino": meta.ino(),
            "offset": meta.len(),
            "size": meta.len(),
            "updated": "2026-01-01T00:00:00Z",
        })
    };
    let registry = json!({
        "version": 1,
        "files": [
            entry(&long, &[b'a'; 2000]),
            entry(&short, b"the deleted file had other lines\n"),
        ],
    });
    std::fs::create_dir_all(registry_path(&state).parent().unwrap()).unwrap();
    std::fs::write(registry_path(&state), registry.to_string()).unwrap();
    let pipeline = pipeline(dir.path(), &[&dir.path().join("*_log")], NEVER);
    let run = Run::start(&pipeline, &state);
    run.wait_for(43, Duration::from_secs(30));
    let events = run.stop();
    assert_eq!(sorted_messages(&events), sorted((0..40).chain(100..103)));
    assert_no_repeats(&events);
}
