//! What the file input makes of awkward content and file life cycles:
//! CRLF, empty lines, overlong lines, binary garbage, partial lines,
//! truncation, deletion while being read, multiline records, a corrupt
//! registry, a cap on open files, forgotten checkpoints, start positions.

mod common;
mod file_support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{backdate, temp_dir, write_lines};
use file_support::*;
use serde_json::Value;

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn messages(events: &[Value]) -> Vec<&str> {
    events.iter().map(message).collect()
}

fn tags(event: &Value) -> Vec<&str> {
    event["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn registry(state: &Path) -> Value {
    try_registry(state).unwrap()
}

/// The registry, once it was written.
fn try_registry(state: &Path) -> Option<Value> {
    let dir = state.join("checkpoints/tail");
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))?;
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    common::wait_until(Duration::from_secs(30), what, || check().then_some(()));
}

#[test]
fn crlf_empty_overlong_and_binary_lines_become_clean_tagged_events() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    let mut content = b"crlf\r\n\n\r\nplain\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 5000));
    content.extend(b"\n\xff\xfe\x00garbage\x01\nno newline at the end");
    std::fs::write(&log, &content).unwrap();
    let pipeline = pipeline(
        dir.path(),
        &[&log],
        "max_line_bytes = 100\nexit_after_eof = true",
    );
    let events = Run::start(&pipeline, &dir.path().join("state")).finish();
    let texts = messages(&events);
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert_eq!(texts[0], "crlf");
    assert_eq!(texts[1], "plain");
    assert_eq!(texts[2], "x".repeat(100));
    assert_eq!(tags(&events[2]), ["_truncated"]);
    assert_eq!(texts[3], "\u{fffd}\u{fffd}\u{0}garbage\u{1}");
    assert_eq!(tags(&events[3]), ["_invalid_utf8"]);
    assert_eq!(texts[4], "no newline at the end");
    assert_eq!(offset(&events[1]), 9);
}

#[test]
fn a_partial_line_waits_for_its_newline_and_is_sent_alone_after_the_timeout() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    append(&log, b"complete\npart");
    let pipeline = pipeline(dir.path(), &[&log], "partial_line_timeout = \"3s\"");
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1, Duration::from_secs(30));
    append(&log, b"ial\norphan");
    run.wait_for(3, Duration::from_secs(30));
    let events = run.stop();
    assert_eq!(messages(&events), ["complete", "partial", "orphan"]);
}

#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(
        &log,
        (0..1000).map(|i| format!("old {i:05} {}", "o".repeat(50))),
    );
    let pipeline = pipeline(dir.path(), &[&log], "");
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1000, Duration::from_secs(30));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, (0..300).map(|i| format!("new {i:05}")));
    run.wait_for(1300, Duration::from_secs(30));
    let events = run.stop();
    let new: Vec<&str> = messages(&events[1000..]);
    let expected: Vec<String> = (0..300).map(|i| format!("new {i:05}")).collect();
    assert_eq!(new, expected);
}

#[test]
fn a_file_deleted_while_being_read_is_read_to_its_end() {
    const LINES: usize = 100_000;
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(
        &log,
        (0..LINES).map(|i| format!("line {i:06} {}", "d".repeat(60))),
    );
    let pipeline = pipeline(dir.path(), &[&log], "");
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1, Duration::from_secs(30));
    std::fs::remove_file(&log).unwrap();
    run.wait_for(LINES, Duration::from_secs(60));
    let events = run.stop();
    assert_eq!(events.len(), LINES);
    for (i, event) in events.iter().enumerate() {
        assert!(message(event).starts_with(&format!("line {i:06} ")));
    }
}

#[test]
fn multiline_records_are_one_event_and_the_checkpoint_waits_for_the_whole_record() {
    let dir = temp_dir();
    let log = dir.path().join("error_log");
    let first = "E1 failed\n  at a\n  at b\n";
    append(&log, format!("{first}E2 failed\n  at c\n").as_bytes());
    let pipeline = pipeline(
        dir.path(),
        &[&log],
        "multiline = { pattern = '^\\s', match = \"previous\", timeout = \"1h\" }",
    );
    let state = dir.path().join("state");
    let run = Run::start(&pipeline, &state);
    run.wait_for(1, Duration::from_secs(30));
    let mut events = run.stop();
    assert_eq!(messages(&events), ["E1 failed\n  at a\n  at b"]);
    assert_eq!(events[0]["log"]["flags"], serde_json::json!(["multiline"]));
    // E2 may have more lines to come: the checkpoint stops before it.
    let offset = registry(&state)["files"][0]["offset"].as_u64().unwrap();
    assert_eq!(offset, first.len() as u64);

    append(&log, b"E3 done\n");
    let run = Run::start(&pipeline, &state);
    run.wait_for(1, Duration::from_secs(30));
    events.extend(run.stop());
    assert_eq!(
        messages(&events),
        ["E1 failed\n  at a\n  at b", "E2 failed\n  at c"]
    );
}

#[test]
fn a_corrupt_registry_is_moved_aside_and_reading_starts_over() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..10).map(|i| format!("line {i}")));
    let state = dir.path().join("state");
    let registry_dir = state.join("checkpoints/tail");
    std::fs::create_dir_all(&registry_dir).unwrap();
    std::fs::write(registry_dir.join("web.json"), b"{\"version\": 1, \"fil").unwrap();
    let pipeline = pipeline(dir.path(), &[&log], "id = \"web\"\nexit_after_eof = true");
    let events = Run::start(&pipeline, &state).finish();
    assert_eq!(events.len(), 10);
    let aside: Vec<_> = std::fs::read_dir(&registry_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt registry is kept aside");
    assert_eq!(registry(&state)["files"][0]["offset"], 70);
}

#[test]
fn files_over_max_open_files_wait_their_turn_and_are_all_read() {
    let dir = temp_dir();
    for f in 0..8 {
        let path = dir.path().join(format!("site{f}_access_log"));
        write_lines(&path, (0..200).map(|i| format!("file {f} line {i:03}")));
    }
    let pattern = dir.path().join("*_access_log");
    let pipeline = pipeline(
        dir.path(),
        &[&pattern],
        "max_open_files = 2\nexit_after_eof = true",
    );
    let events = Run::start(&pipeline, &dir.path().join("state")).finish();
    assert_eq!(events.len(), 8 * 200);
    for f in 0..8 {
        let lines: Vec<&str> = messages(&events)
            .into_iter()
            .filter(|m| m.starts_with(&format!("file {f} ")))
            .collect();
        let expected: Vec<String> = (0..200).map(|i| format!("file {f} line {i:03}")).collect();
        assert_eq!(lines, expected);
    }
}

#[test]
fn checkpoints_of_removed_files_are_forgotten_once_they_are_read() {
    let dir = temp_dir();
    let keep = dir.path().join("access_log");
    let gone = dir.path().join("access_log.1");
    write_lines(&keep, ["kept".to_owned()]);
    write_lines(&gone, ["gone".to_owned()]);
    let pipeline = pipeline(dir.path(), &[&dir.path().join("access_log*")], "");
    let state = dir.path().join("state");
    let run = Run::start(&pipeline, &state);
    run.wait_for(2, Duration::from_secs(30));
    wait_until("both checkpoints", || {
        try_registry(&state).is_some_and(|r| {
            let files = r["files"].as_array().unwrap();
            files.len() == 2 && files.iter().all(|f| f["offset"].as_u64() > Some(0))
        })
    });
    std::fs::remove_file(&gone).unwrap();
    wait_until("the removed file's checkpoint to go", || {
        try_registry(&state).is_some_and(|r| r["files"].as_array().unwrap().len() == 1)
    });
    run.stop();
    assert_eq!(
        registry(&state)["files"][0]["path"],
        keep.display().to_string()
    );
}

#[test]
fn start_position_end_skips_existing_lines_only_at_the_first_start_never_those_of_later_files() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, ["before start".to_owned()]);
    let pipeline = pipeline(
        dir.path(),
        &[&dir.path().join("access_log*")],
        "start_position = \"end\"",
    );
    let run = Run::start(&pipeline, &dir.path().join("state"));
    // The first scan has run once the checkpoint exists.
    wait_until("the first checkpoint", || {
        try_registry(&dir.path().join("state")).is_some()
    });
    write_lines(&log, ["after start".to_owned()]);
    write_lines(
        &dir.path().join("access_log.new"),
        ["later file".to_owned()],
    );
    run.wait_for(2, Duration::from_secs(30));
    let events = run.stop();
    let mut texts = messages(&events);
    texts.sort();
    assert_eq!(texts, ["after start", "later file"]);

    // A file that appeared while logpipe was down is new too: read whole.
    write_lines(
        &dir.path().join("access_log.down"),
        ["while down".to_owned()],
    );
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1, Duration::from_secs(30));
    assert_eq!(messages(&run.stop()), ["while down"]);
}

#[test]
fn new_files_are_noticed_through_inotify_without_waiting_for_the_rescan() {
    let dir = temp_dir();
    let logs = dir.path().join("vhosts");
    std::fs::create_dir_all(logs.join("shop")).unwrap();
    // Over 1024 bytes each, so that they are identified at once: a short
    // file would be looked at again when its close_inactive wait ends.
    let (first, second) = (
        format!("first {}", "f".repeat(1100)),
        format!("second {}", "s".repeat(1100)),
    );
    write_lines(&logs.join("shop/error_log"), [first.clone()]);
    let pattern = logs.join("*/error_log");
    // Only inotify can find the second file: the rescan is an hour away.
    let pipeline = pipeline(dir.path(), &[&pattern], "scan_interval = \"1h\"");
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1, Duration::from_secs(30));
    std::fs::create_dir_all(logs.join("blog")).unwrap();
    write_lines(&logs.join("blog/error_log"), [second.clone()]);
    run.wait_for(2, Duration::from_secs(30));
    assert_eq!(messages(&run.stop()), [first, second]);
}

/// Whether process `pid` holds `path` open.
fn holds_open(pid: u32, path: &Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

#[test]
fn old_files_are_read_in_full_and_then_released_at_once_with_ignore_older() {
    let dir = temp_dir();
    let old = dir.path().join("access_log.1");
    let live = dir.path().join("access_log");
    write_lines(&old, ["old but unread".to_owned()]);
    backdate(&old, Duration::from_secs(7 * 24 * 3600));
    // Over 1024 bytes: a shorter new file would wait for close_inactive.
    let live_line = format!("live {}", "x".repeat(1100));
    write_lines(&live, [live_line.clone()]);
    let pipeline = pipeline(
        dir.path(),
        &[&dir.path().join("access_log*")],
        "ignore_older = \"1h\"\nclose_inactive = \"1h\"",
    );
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(2, Duration::from_secs(30));
    wait_until("the old file to be released", || {
        !holds_open(run.pid(), &old)
    });
    assert!(
        holds_open(run.pid(), &live),
        "close_inactive holds the live file"
    );
    let mut texts = messages(&run.stop())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    texts.sort();
    assert_eq!(texts, [live_line, "old but unread".to_owned()]);
}

/// `match = "next"`: a line that matches belongs to the event after it
/// (here, lines ending in a backslash continue on the next line).
#[test]
fn multiline_match_next_joins_a_line_to_the_one_after_it() {
    let dir = temp_dir();
    let log = dir.path().join("app_log");
    append(&log, b"a \\\nb\nc \\\nd \\\ne\nf\n");
    let pipeline = pipeline(
        dir.path(),
        &[&log],
        "exit_after_eof = true\nmultiline = { pattern = '\\\\$', match = \"next\" }",
    );
    let events = Run::start(&pipeline, &dir.path().join("state")).finish();
    assert_eq!(messages(&events), ["a \\\nb", "c \\\nd \\\ne", "f"]);
    assert_eq!(events[0]["log"]["offset"], 0);
    assert_eq!(events[1]["log"]["offset"], 6);
    assert_eq!(events[2]["log"]["flags"], serde_json::Value::Null);
}

/// `exclude` as Filebeat and Logstash users write it: `*.gz` leaves out
/// compressed rotations in any directory (matched against the base name,
/// although the pipeline file lives elsewhere), and a pattern with a slash
/// leaves out a path.
#[test]
fn exclude_matches_base_names_without_a_slash_and_paths_with_one() {
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("old")).unwrap();
    for (name, line) in [
        ("access_log", "live"),
        ("access_log.1", "rotated"),
        ("access_log.2.gz", "compressed"),
        ("old/access_log", "old live"),
        ("old/access_log.1.gz", "old compressed"),
    ] {
        write_lines(&logs.join(name), [line.to_owned()]);
    }
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let pipeline = etc.join("tail.toml");
    let logs = logs.display();
    std::fs::write(
        &pipeline,
        format!(
            r#"
name = "tail"
[[input]]
type = "file"
paths = ["{logs}/access_log*", "{logs}/*/access_log*"]
exclude = ["*.gz", "{logs}/old/access_log"]
exit_after_eof = true

[[output]]
type = "stdout"
"#
        ),
    )
    .unwrap();
    let events = Run::start(&pipeline, &dir.path().join("state")).finish();
    let mut texts = messages(&events);
    texts.sort();
    assert_eq!(texts, ["live", "rotated"]);
}
