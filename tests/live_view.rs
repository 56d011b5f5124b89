//! The live views of a running daemon: `logpipe tap` (events as they leave
//! a stage; a tap that is never read does not hold the pipeline back) and
//! `logpipe top` (rates per stage, as plain tables off a terminal).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A daemon following `log` through a filter that tags every event, to the
/// null output, with its monitoring endpoint on `addr`.
fn daemon(dir: &Path, log: &Path, addr: &str) -> Child {
    let pipeline = pipeline_toml("tapped")
        .file_input(log)
        .with("poll_interval = \"20ms\"")
        .filter("mutate")
        .with("add_tag = [\"tapped\"]")
        .with("[[output]]\ntype = \"null\"")
        .write_to(dir.join("tapped.toml"));
    let child = run_command(
        &pipeline,
        &dir.join("state"),
        &["--metrics-address", addr],
        Stdio::null(),
    )
    .spawn()
    .unwrap();
    wait_until(Duration::from_secs(30), "the daemon's /health", || {
        http_get(addr, "/health").filter(|(s, _)| *s == 200)
    });
    child
}

/// A thread appending a line every 5 ms until [`Writer::stop`].
struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

/// SIGTERM, a clean exit within 30 s, and books that balance: taps and
/// views take nothing from the pipeline.
fn stop_daemon(mut child: Child, dir: &Path) {
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let books = closed_books_of(&dir.join("state.log"), "whole");
    books.assert_exact("tapped daemon");
    assert_eq!(books.read, books.delivered, "{books:?}");
}

fn writer(log: &Path) -> Writer {
    let log = log.to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut n = 0;
        while !flag.load(Ordering::Relaxed) {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            writeln!(f, "live line {n}").unwrap();
            n += 1;
            // A writer's pace, not a wait: lines must keep arriving while
            // the taps run.
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Writer { stop, thread }
}

fn tap(addr: &str, args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let out = logpipe()
        .arg("tap")
        .args(args)
        .args(["--metrics-address", addr])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tap_prints_live_events_as_they_leave_the_stage_asked_for() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, ["first".to_owned()]);
    let addr = metrics_address();
    let child = daemon(dir.path(), &log, &addr);
    let writer = writer(&log);

    let (code, events, err) = tap(&addr, &["tapped", "--stage", "filters", "--limit", "5"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(events.len(), 5, "{err}");
    for e in &events {
        assert!(
            e["message"].as_str().unwrap().starts_with("live line"),
            "{e}"
        );
        assert!(
            e["tags"].as_array().unwrap().contains(&"tapped".into()),
            "{e}"
        );
        assert!(e["@metadata"]["_id"].is_string(), "{e}");
    }
    let (code, events, err) = tap(&addr, &["tapped", "--stage", "input", "--limit", "3"]);
    assert_eq!((code, events.len()), (0, 3), "{err}");
    assert!(events.iter().all(|e| e.get("tags").is_none()), "{events:?}");
    let (code, events, err) = tap(
        &addr,
        &[
            "tapped", "--stage", "output", "--limit", "2", "--sample", "0.5",
        ],
    );
    assert_eq!((code, events.len()), (0, 2), "{err}");

    let (code, _, err) = tap(&addr, &["nope", "--limit", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no pipeline `nope`") && err.contains("tapped"),
        "{err}"
    );
    let (code, _, err) = tap(&addr, &["tapped", "--stage", "middle"]);
    assert_eq!(code, 2, "{err}");

    writer.stop();
    stop_daemon(child, dir.path());
}

#[test]
fn a_tap_nobody_reads_skips_events_and_never_holds_the_pipeline() {
    use std::io::Read;
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, ["first".to_owned()]);
    let addr = metrics_address();
    let child = daemon(dir.path(), &log, &addr);
    // A reader that asks and then never reads.
    let mut stuck = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stuck,
        "GET /tap?pipeline=tapped&stage=filters HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stuck.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let lines = 60_000;
    write_lines(
        &log,
        (0..lines).map(|i| format!("bulk line {i} {}", "x".repeat(200))),
    );
    let labels = ["pipeline=\"tapped\"", "stage=\"filter\""];
    wait_metric(
        &addr,
        "logpipe_events_out_total",
        &labels,
        Duration::from_secs(60),
        |v| v >= f64::from(lines + 1),
    );
    let skipped = wait_metric(
        &addr,
        "logpipe_tap_skipped_total",
        &["pipeline=\"tapped\"", "stage=\"filters\""],
        Duration::from_secs(10),
        |v| v > 0.0,
    );
    assert!(skipped > 0.0);
    drop(stuck);
    stop_daemon(child, dir.path());
}

#[test]
fn top_off_a_terminal_prints_a_table_of_every_stage_with_its_rates() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, ["first".to_owned()]);
    let addr = metrics_address();
    let child = daemon(dir.path(), &log, &addr);
    let writer = writer(&log);
    let out = logpipe()
        .args([
            "top",
            "--iterations",
            "2",
            "--interval",
            "0.5",
            "--metrics-address",
            &addr,
        ])
        .output()
        .unwrap();
    writer.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("PIPELINE").count(), 2, "two tables:\n{text}");
    assert!(
        text.contains(&format!("logpipe at http://{addr}: healthy")),
        "{text}"
    );
    for stage in ["input.file", "filter", "output.null"] {
        let row = text
            .lines()
            .rfind(|l| l.starts_with("tapped") && l.contains(stage))
            .unwrap_or_else(|| panic!("no row for {stage}:\n{text}"));
        assert!(row.ends_with("running"), "{row}");
    }
    // Lines arrive every 5 ms: the file input's rate is not zero.
    let input = text
        .lines()
        .rfind(|l| l.starts_with("tapped") && l.contains("input.file"))
        .unwrap();
    let in_rate = input.split_whitespace().nth(2).unwrap();
    assert_ne!(in_rate, "0", "{input}");
    assert!(text.contains("tapped: 1 open file(s)"), "{text}");
    let down = logpipe()
        .args([
            "top",
            "--iterations",
            "1",
            "--metrics-address",
            &metrics_address(),
        ])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("not reachable"));
    stop_daemon(child, dir.path());
}
