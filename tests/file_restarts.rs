//! Restarts while a writer appends: a clean stop (SIGTERM) waits for every
//! acknowledgement, so nothing is lost or repeated; a kill -9 loses nothing
//! and repeats only the unacknowledged window, whose lines keep their origin
//! ids, so deduplicating by id leaves every line exactly once.

mod common;
mod file_support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::temp_dir;
use file_support::*;

/// Writes `0..total` in bursts with short pauses, so that restarts land
/// during writes.
fn spawn_writer(writer: Writer, total: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = 1;
        while from < total {
            let to = (from + 300).min(total);
            writer.write(from, to);
            from = to;
            // A sleep, not a wait: the writer's pace, bursts with pauses.
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// The checkpointed offset of the only file in the registry, once one was
/// written.
fn checkpoint(state: &Path) -> Option<u64> {
    let dir = state.join("checkpoints/tail");
    // Not a `.json.tmp` that a kill left behind: the next start ignores it.
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))?;
    let registry: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    registry["files"][0]["offset"].as_u64()
}

#[test]
fn clean_restarts_during_and_between_writes_lose_and_repeat_nothing() {
    const LINES: u64 = 60_000;
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let writer = Writer {
        dir: logs.clone(),
        name: "access_log".into(),
        rotation: Rotation::RenameCreate,
        every: 7_000,
        padding: 80,
    };
    writer.write(0, 1);
    let pipeline = pipeline(dir.path(), &[&logs.join("access_log*")], "");
    let state = dir.path().join("state");
    let writing = spawn_writer(writer, LINES);

    let mut events = Vec::new();
    let mut restarts = 0;
    while !writing.is_finished() {
        let run = Run::start(&pipeline, &state);
        // Some progress, unless the writer is done and everything was read.
        let deadline = Instant::now() + Duration::from_secs(30);
        while run.count() == 0 && !writing.is_finished() {
            assert!(Instant::now() < deadline, "no progress after a restart");
            std::thread::sleep(Duration::from_millis(10));
        }
        // A sleep, not a wait: the run lives a while, so the stop lands mid-stream.
        std::thread::sleep(Duration::from_millis(150));
        events.extend(run.stop());
        restarts += 1;
    }
    writing.join().unwrap();
    // One more stop and start with the writer idle, mid-backlog or not.
    let run = Run::start(&pipeline, &state);
    // A sleep, not a wait: the stop lands wherever the run is, mid-backlog or not.
    std::thread::sleep(Duration::from_millis(200));
    events.extend(run.stop());
    let run = Run::start(&pipeline, &state);
    run.wait_for(LINES as usize - events.len(), Duration::from_secs(90));
    events.extend(run.stop());

    assert!(
        restarts >= 2,
        "the writer finished too early to test restarts"
    );
    assert_complete(&events, LINES, true);
}

#[test]
fn kill_9_mid_stream_loses_nothing_and_repeats_only_the_unacknowledged_window() {
    const LINES: u64 = 60_000;
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let writer = Writer {
        dir: logs.clone(),
        name: "access_log".into(),
        rotation: Rotation::None,
        every: LINES,
        padding: 80,
    };
    writer.write(0, 1);
    let pipeline = pipeline(dir.path(), &[&logs.join("access_log")], "");
    let state = dir.path().join("state");
    let writing = spawn_writer(writer, LINES);

    let first = Run::start(&pipeline, &state);
    first.wait_for(5_000, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint(&state).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = first.kill();
    let saved = checkpoint(&state).unwrap();
    writing.join().unwrap();

    let second = Run::start(&pipeline, &state);
    let mut ids: HashSet<String> = first.iter().map(|e| id(e).to_owned()).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut all = ids.clone();
        all.extend(second.snapshot().iter().map(|e| id(e).to_owned()));
        if all.len() as u64 >= LINES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out at {} lines",
            all.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = second.stop();
    let mut events = first.clone();

    // The second run starts exactly at the checkpoint; what it repeats is
    // what the first run printed past it (not yet acknowledged).
    assert_eq!(second.iter().map(offset).min(), Some(saved));
    let by_offset: HashMap<u64, &str> = first.iter().map(|e| (offset(e), id(e))).collect();
    let mut repeated = 0;
    for event in &second {
        if let Some(first_id) = by_offset.get(&offset(event)) {
            assert!(
                offset(event) >= saved,
                "an acknowledged line was read again"
            );
            assert_eq!(*first_id, id(event), "a re-read line changed its origin id");
            repeated += 1;
        }
        ids.insert(id(event).to_owned());
    }
    assert_eq!(repeated, repeats(&first, saved));
    assert_eq!(
        ids.len() as u64,
        LINES,
        "distinct origin ids = lines written"
    );
    events.extend(second);
    assert_complete(&events, LINES, false);
}

/// Events of `run` at or past the checkpoint: the unacknowledged window.
fn repeats(run: &[serde_json::Value], saved: u64) -> usize {
    run.iter().filter(|e| offset(e) >= saved).count()
}
