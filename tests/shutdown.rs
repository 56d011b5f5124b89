//! SIGTERM while events are in flight: logpipe stops reading, delivers what
//! it already read, writes its checkpoint and exits 0; the next run starts
//! exactly where the last delivered line ended.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use common::*;

const LINES: usize = 200_000;

fn pipeline(dir: &std::path::Path, log: &std::path::Path, extra: &str) -> std::path::PathBuf {
    pipeline_toml("drain")
        .with(extra)
        .file_input(log)
        .with("exit_after_eof = true\nbatch_events = 500")
        .stdout_output()
        .write_to(dir.join("drain.toml"))
}

#[test]
fn sigterm_delivers_every_event_in_flight_and_resumes_after_them() {
    drain_and_resume("", true);
}

/// The same with several filter workers: batches may reach the output out
/// of order, but a drained stop still leaves a checkpoint that covers
/// exactly the delivered lines, and nothing is read twice.
#[test]
fn with_several_filter_workers_the_checkpoint_still_covers_exactly_what_was_delivered() {
    drain_and_resume(
        "filter_workers = 3\n[[filter]]\ntype = \"mutate\"\nadd_tag = [\"filtered\"]",
        false,
    );
}

fn drain_and_resume(extra: &str, ordered: bool) {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(
        &log,
        (0..LINES).map(|i| format!("line {i:06} {}", "x".repeat(40))),
    );
    let pipeline = pipeline(dir.path(), &log, extra);
    let state = dir.path().join("state");

    // Read stdout slowly at first: the pipe fills, the output blocks and
    // batches pile up in the channels, so SIGTERM arrives with events in
    // flight.
    let metrics = metrics_address();
    let mut child = spawn_run(
        &pipeline,
        &state,
        &["--metrics-address", &metrics],
        Stdio::piped(),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first_run = Vec::new();
    let mut line = String::new();
    while first_run.len() < 1000 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "logpipe ended early"
        );
        first_run.push(line.clone());
    }
    // Wait until events are in flight: two batches at least that the input
    // read and the output has not written (it is blocked on the full pipe).
    let count = |text: &str, name: &str, stage: &str| {
        metric_sample(text, name, &["pipeline=\"drain\"", stage]).unwrap_or(0.0)
    };
    wait_until(
        Duration::from_secs(30),
        "1000 events read and not yet written out, in /metrics",
        || {
            let (_, text) = http_get(&metrics, "/metrics")?;
            let read = count(&text, "logpipe_events_in_total", "stage=\"input.file\"");
            let out = count(&text, "logpipe_events_out_total", "stage=\"output.stdout\"");
            (read - out >= 1000.0).then_some(())
        },
    );
    sigterm(&child);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    first_run.extend(rest.lines().map(|l| format!("{l}\n")));
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        first_run.len() < LINES,
        "the run should have been stopped before the end ({} lines)",
        first_run.len()
    );

    // The checkpoint is exactly the end of the last delivered line.
    let registry = std::fs::read_dir(state.join("checkpoints/drain"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let registry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry).unwrap()).unwrap();
    let offset = registry["files"][0]["offset"].as_u64().unwrap();
    let line_len = format!("line {:06} {}\n", 0, "x".repeat(40)).len() as u64;
    assert_eq!(
        offset,
        first_run.len() as u64 * line_len,
        "checkpoint = every delivered line, no more, no less"
    );

    // The second run starts right after and reads to the end.
    let mut child = spawn_run(&pipeline, &state, &[], Stdio::piped());
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    let second_run: Vec<&str> = out.lines().collect();

    let messages: Vec<String> = first_run
        .iter()
        .map(|l| l.as_str())
        .chain(second_run.iter().copied())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(messages.len(), LINES, "no line lost, none repeated");
    let mut messages = messages;
    if !ordered {
        messages.sort();
    }
    for (i, m) in messages.iter().enumerate() {
        assert!(
            m.starts_with(&format!("line {i:06} ")),
            "line {i} out of order: {m}"
        );
    }
}
