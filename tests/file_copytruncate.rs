//! copytruncate when logpipe had already read past the end of the copy
//! (the writer appended between logrotate's copy and its truncate): the copy
//! holds nothing unread, so logpipe takes it over at its end, keeps its
//! checkpoint at the copy's size, and reads the truncated file anew —
//! nothing repeated, then or after a restart. Also: a copy seen while
//! logrotate is still writing it (the scan its creation triggers) is not
//! taken for a new file. In-process, so that each step waits for the input
//! to have delivered the lines before it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use logpipe::input::file::{FileInput, OnCorruptCheckpoint, StartPosition};
use logpipe::shutdown::{RunCx, Shutdown};
use logpipe::Batch;
use tokio::sync::mpsc;

fn input(pattern: &Path, exit_after_eof: bool) -> FileInput {
    FileInput {
        id: "copytruncate".into(),
        patterns: vec![pattern.to_string_lossy().into_owned()],
        exclude: Vec::new(),
        tags: Vec::new(),
        fields: None,
        start_position: StartPosition::Beginning,
        exit_after_eof,
        checkpoint: true,
        on_corrupt_checkpoint: OnCorruptCheckpoint::Beginning,
        follow_symlinks: false,
        max_line_bytes: 4096,
        batch_events: 100,
        batch_bytes: 1 << 20,
        scan_interval: Duration::from_millis(50),
        poll_interval: Duration::from_millis(10),
        partial_line_timeout: Duration::from_secs(60),
        close_inactive: Duration::from_secs(60),
        ignore_older: None,
        clean_removed: true,
        max_open_files: 16,
        multiline: None,
    }
}

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
}

/// Receives and acknowledges batches until `n` more messages arrived.
async fn receive(rx: &mut mpsc::Receiver<Batch>, seen: &mut Vec<String>, n: usize) {
    let target = seen.len() + n;
    while seen.len() < target {
        let batch = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timed out waiting for events")
            .expect("the input stopped");
        for event in &batch.events {
            seen.push(event.fields["message"].as_str().unwrap().to_owned());
        }
        batch.ack.ack();
    }
}

fn cx(state: PathBuf) -> RunCx {
    RunCx {
        pipeline: Arc::from("copytruncate"),
        shutdown: Shutdown::default(),
        state_dir: state,
        books: logpipe::accounting::Books::detached("test"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_shorter_than_what_was_read_is_taken_over_at_its_end_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access_log");
    let copy = dir.path().join("access_log.1");
    let pattern = dir.path().join("access_log*");
    let line = |i: usize| format!("first generation line {i:04} {}", "p".repeat(60));
    append(&log, (0..50).map(line));

    let cx1 = cx(dir.path().join("state"));
    let stop = cx1.shutdown.stop.clone();
    let (tx, mut rx) = mpsc::channel(4);
    let running = tokio::spawn(input(&pattern, false).run(tx, cx1));
    let mut seen = Vec::new();
    receive(&mut rx, &mut seen, 50).await;

    // logrotate copies; the writer appends; logpipe reads that; then the
    // truncate, and the writer goes on in the emptied file.
    std::fs::copy(&log, &copy).unwrap();
    append(&log, ["written after the copy".to_owned()]);
    receive(&mut rx, &mut seen, 1).await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    // Over 1024 bytes, so the new content is identified at once (a shorter
    // file waits for close_inactive).
    let second = |i: usize| format!("second generation line {i:02} {}", "s".repeat(60));
    append(&log, (0..20).map(second));
    receive(&mut rx, &mut seen, 20).await;

    stop.cancel();
    drop(rx);
    running.await.unwrap().unwrap();
    let mut expected: Vec<String> = (0..50).map(line).collect();
    expected.push("written after the copy".into());
    expected.extend((0..20).map(second));
    assert_eq!(seen, expected);

    // A restart finds nothing unread in either file.
    let (tx, mut rx) = mpsc::channel(4);
    let running = tokio::spawn(input(&pattern, true).run(tx, cx(dir.path().join("state"))));
    let mut again = Vec::new();
    while let Some(batch) = rx.recv().await {
        again.extend(batch.events.iter().map(|e| e.fields["message"].to_string()));
        batch.ack.ack();
    }
    running.await.unwrap().unwrap();
    assert!(again.is_empty(), "read again: {again:?}");
}

/// Nothing arrives within `quiet`.
async fn nothing_more(rx: &mut mpsc::Receiver<Batch>, quiet: Duration) {
    if let Ok(Some(batch)) = tokio::time::timeout(quiet, rx.recv()).await {
        let messages: Vec<String> = batch
            .events
            .iter()
            .map(|e| e.fields["message"].to_string())
            .collect();
        panic!("read again: {messages:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_seen_while_it_is_being_written_is_not_read_as_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access_log");
    let copy = dir.path().join("access_log.1");
    let pattern = dir.path().join("access_log*");
    let line = |i: usize| format!("first generation line {i:04} {}", "p".repeat(60));
    append(&log, (0..50).map(line));

    let cx1 = cx(dir.path().join("state"));
    let stop = cx1.shutdown.stop.clone();
    let (tx, mut rx) = mpsc::channel(4);
    let running = tokio::spawn(input(&pattern, false).run(tx, cx1));
    let mut seen = Vec::new();
    receive(&mut rx, &mut seen, 50).await;

    // The copy holds the first 500 bytes while several scans (every 50 ms)
    // look at it: too short to match the followed file's fingerprint of
    // 1024 bytes, yet all of it the followed file's start.
    let content = std::fs::read(&log).unwrap();
    std::fs::write(&copy, &content[..500]).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::write(&copy, &content).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let second = |i: usize| format!("second generation line {i:02} {}", "s".repeat(60));
    append(&log, (0..20).map(second));
    receive(&mut rx, &mut seen, 20).await;
    nothing_more(&mut rx, Duration::from_secs(1)).await;

    stop.cancel();
    drop(rx);
    running.await.unwrap().unwrap();
    let mut expected: Vec<String> = (0..50).map(line).collect();
    expected.extend((0..20).map(second));
    assert_eq!(seen, expected);
}
