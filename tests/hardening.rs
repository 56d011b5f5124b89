//! Bad luck and bad intent, through the running binary: checkpoints that
//! cannot be read, are corrupt or cannot be written, and symbolic links,
//! FIFOs and directories in a watched log directory. Each test counts what
//! was written, delivered, lost and repeated.
//!
//! Root reads any file, so the permission tests run the daemon as `nobody`
//! when the test runs as root (as CI does).

mod common;
mod file_support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{free_port, http_get, temp_dir, wait_metric, write_lines};
use file_support::{message, Run};
use serde_json::Value;

const NOBODY: u32 = 65534;

/// The user the daemon runs as in permission tests: `nobody` under root.
fn daemon_user() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    (unsafe { libc::geteuid() } == 0).then_some(NOBODY)
}

/// Lets the daemon user into the test's directory and makes `state` its own.
fn prepare(dir: &Path, state: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(state).unwrap();
    if let Some(uid) = daemon_user() {
        std::os::unix::fs::chown(state, Some(uid), Some(uid)).unwrap();
    }
}

/// Takes `path` away from the daemon user (`readable`: reading too, else
/// only writing), or gives it back.
fn restrict(path: &Path, restricted: bool, readable: bool) {
    // Under root the daemon is `nobody`: taking ownership away is enough
    // to deny writing. Otherwise the mode must deny it to the owner.
    let user = daemon_user();
    if let Some(uid) = user {
        let owner = if restricted { 0 } else { uid };
        std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
    }
    let mode = match (restricted, readable, path.is_dir(), user.is_some()) {
        (false, _, true, _) | (true, true, true, true) => 0o755,
        (false, _, false, _) | (true, true, false, true) => 0o644,
        (true, false, _, true) => 0o600,
        (true, false, _, false) => 0o000,
        (true, true, true, false) => 0o555,
        (true, true, false, false) => 0o444,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn lines(path: &Path, range: std::ops::Range<u64>) {
    write_lines(
        path,
        range.map(|n| format!("line {n:06} {}", "x".repeat(60))),
    );
}

fn number(event: &Value) -> u64 {
    message(event)
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {event}"))
}

/// The line numbers of `events`, asserting each arrived once.
fn numbers_once(events: &[Value]) -> Vec<u64> {
    let mut seen = HashSet::new();
    let mut out: Vec<u64> = events.iter().map(number).collect();
    for n in &out {
        assert!(seen.insert(*n), "line {n} delivered twice");
    }
    out.sort_unstable();
    out
}

/// The file_support pipeline over `paths` with input id `web` (so its
/// registry is `checkpoints/tail/web.json`).
fn pipeline_for(dir: &Path, paths: &[&Path], extra: &str) -> PathBuf {
    file_support::pipeline(dir, paths, &format!("id = \"web\"\n{extra}"))
}

fn pipeline(dir: &Path, log: &Path, extra: &str) -> PathBuf {
    pipeline_for(dir, &[log], extra)
}

/// A test's folder: `logs/access_log` with lines `0..lines` and a state
/// directory the daemon user owns, and a monitoring port.
struct Scene {
    dir: tempfile::TempDir,
    log: PathBuf,
    state: PathBuf,
    port: u16,
    metrics: String,
}

impl Scene {
    fn new(lines_at_start: u64) -> Scene {
        let dir = temp_dir();
        let (logs, state) = (dir.path().join("logs"), dir.path().join("state"));
        std::fs::create_dir(&logs).unwrap();
        prepare(dir.path(), &state);
        let log = logs.join("access_log");
        lines(&log, 0..lines_at_start);
        let port = free_port();
        Scene {
            dir,
            log,
            state,
            port,
            metrics: format!("127.0.0.1:{port}"),
        }
    }

    fn pipeline(&self, extra: &str) -> PathBuf {
        pipeline(self.dir.path(), &self.log, extra)
    }

    /// The daemon, as the daemon user, with the monitoring endpoint.
    fn start(&self, pipeline: &Path) -> Run {
        let extra = ["--metrics-address", self.metrics.as_str()];
        Run::start_with(pipeline, &self.state, &extra, daemon_user())
    }
}

/// `GET path` on the monitoring endpoint: status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get(&format!("127.0.0.1:{port}"), path)
}

/// Waits until `/health` answers `status` with a body containing `text`.
fn wait_health(port: u16, status: u16, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((s, body)) = get(port, "/health") {
            if s == status && body.contains(text) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/health never answered {status} with {text:?}; last: {s} {body}"
            );
        }
        assert!(Instant::now() < deadline, "/health never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_log(run: &Run, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "the log never said {text:?}:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn registry(state: &Path) -> PathBuf {
    state.join("checkpoints/tail/web.json")
}

fn checkpointed(state: &Path) -> Option<u64> {
    let text = std::fs::read(registry(state)).ok()?;
    let v: Value = serde_json::from_slice(&text).ok()?;
    v["files"][0]["offset"].as_u64()
}

fn wait_checkpoint(state: &Path, offset: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpointed(state) != Some(offset) {
        assert!(
            Instant::now() < deadline,
            "checkpoint stayed at {:?}, not {offset}",
            checkpointed(state)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the checkpoint covers all of `log` as it is now: every line
/// was read and delivered, and the daemon recorded it.
fn wait_checkpoint_at_end(state: &Path, log: &Path) {
    wait_checkpoint(state, std::fs::metadata(log).unwrap().len());
}

#[test]
fn an_unreadable_checkpoint_holds_the_input_back_and_skips_nothing() {
    let scene = Scene::new(30);
    let (log, state, port) = (&scene.log, &scene.state, scene.port);
    let pipeline = scene.pipeline("start_position = \"end\"");

    // First start at the end (30 lines skipped by choice), then 100 lines.
    let run = scene.start(&pipeline);
    wait_log(&run, "Following new file.");
    lines(log, 30..130);
    run.wait_for(100, Duration::from_secs(30));
    let first = run.stop();
    assert_eq!(numbers_once(&first), (30..130).collect::<Vec<_>>());

    // 100 lines while logpipe is down; then its registry cannot be read.
    lines(log, 130..230);
    let reg = registry(state);
    let before = std::fs::read(&reg).unwrap();
    restrict(&reg, true, false);
    let run = scene.start(&pipeline);
    let body = wait_health(port, 503, "cannot read the checkpoint registry");
    assert!(body.contains("web.json"), "{body}");
    assert!(body.contains("input.file[web]"), "{body}");
    // A sleep, not a wait: a negative check, nothing may be read meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        run.count(),
        0,
        "nothing may be read without the checkpoints"
    );
    assert!(run.log().contains("Cannot use the checkpoint registry"));
    assert_eq!(std::fs::read(&reg).unwrap(), before, "the registry changed");

    // Readable again: the input starts by itself, from the checkpoint.
    restrict(&reg, false, true);
    run.wait_for(100, Duration::from_secs(30));
    wait_health(port, 200, "\"ok\"");
    wait_checkpoint_at_end(state, log);
    let second = run.stop();
    assert_eq!(numbers_once(&second), (130..230).collect::<Vec<_>>());
    // Written 230: 30 before the first start (start_position = "end"),
    // delivered 200 exactly once, lost 0.
    assert_eq!(first.len() + second.len(), 200);
}

#[test]
fn a_corrupt_checkpoint_is_kept_aside_and_its_files_are_read_from_the_start() {
    let dir = temp_dir();
    let (logs, state) = (dir.path().join("logs"), dir.path().join("state"));
    std::fs::create_dir(&logs).unwrap();
    prepare(dir.path(), &state);
    let log = logs.join("access_log");
    lines(&log, 0..50);
    let garbage = b"{\"version\": 1, \"files\": [{\"identity\": tru".to_vec();
    let reg = registry(&state);
    std::fs::create_dir_all(reg.parent().unwrap()).unwrap();
    std::fs::write(&reg, &garbage).unwrap();

    // `start_position = "end"` does not apply: which lines were shipped is
    // unknown, so every file is read from its beginning.
    let at_end = pipeline(dir.path(), &log, "start_position = \"end\"");
    let run = Run::start(&at_end, &state);
    run.wait_for(50, Duration::from_secs(30));
    wait_checkpoint_at_end(&state, &log);
    let log_text = run.log();
    let events = run.stop();
    assert_eq!(numbers_once(&events), (0..50).collect::<Vec<_>>());
    assert!(log_text.contains("moved it aside"), "{log_text}");
    let aside: Vec<PathBuf> = std::fs::read_dir(reg.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("web.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "bytes lost");
    assert!(
        log_text.contains(&*aside[0].to_string_lossy()),
        "{log_text}"
    );
    assert_eq!(
        checkpointed(&state),
        Some(std::fs::metadata(&log).unwrap().len())
    );

    // Asked for in so many words: per start_position.
    std::fs::write(&reg, &garbage).unwrap();
    let as_asked = pipeline(
        dir.path(),
        &log,
        "start_position = \"end\"\non_corrupt_checkpoint = \"start_position\"",
    );
    let run = Run::start(&as_asked, &state);
    wait_log(&run, "Following new file.");
    lines(&log, 50..60);
    run.wait_for(10, Duration::from_secs(30));
    wait_checkpoint_at_end(&state, &log);
    let events = run.stop();
    assert_eq!(numbers_once(&events), (50..60).collect::<Vec<_>>());
}

#[test]
fn a_checkpoint_that_cannot_be_written_degrades_health_and_fails_the_stop() {
    let scene = Scene::new(50);
    let (log, state, port) = (&scene.log, &scene.state, scene.port);
    let pipeline = scene.pipeline("");

    let run = scene.start(&pipeline);
    run.wait_for(50, Duration::from_secs(30));
    let good = std::fs::metadata(log).unwrap().len();
    wait_checkpoint(state, good);
    // The state directory turns read-only under the running daemon.
    let checkpoints = registry(state).parent().unwrap().to_path_buf();
    restrict(&checkpoints, true, true);
    lines(log, 50..100);
    run.wait_for(100, Duration::from_secs(30));
    let body = wait_health(port, 503, "cannot write checkpoints");
    assert!(body.contains("degraded"), "{body}");
    let (status, first) = run.stop_status();
    assert_eq!(
        status.code(),
        Some(1),
        "a stop without its final checkpoint"
    );
    assert_eq!(numbers_once(&first), (0..100).collect::<Vec<_>>());
    assert_eq!(checkpointed(state), Some(good), "the registry changed");

    // Writable again: what was delivered after the last good write is read
    // again (the exit status said so), with the same origin ids.
    restrict(&checkpoints, false, true);
    let run = scene.start(&pipeline);
    run.wait_for(50, Duration::from_secs(30));
    wait_health(port, 200, "\"ok\"");
    wait_checkpoint_at_end(state, log);
    let second = run.stop();
    assert_eq!(numbers_once(&second), (50..100).collect::<Vec<_>>());
    let ids = |events: &[Value]| -> HashSet<String> {
        events
            .iter()
            .filter(|e| number(e) >= 50)
            .map(|e| file_support::id(e).to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ids(&second), "repeats must keep their ids");
    // Written 100, delivered 100 + 50 repeats (known by id), lost 0.
}

#[test]
fn links_fifos_and_directories_in_a_log_directory_are_not_read() {
    let dir = temp_dir();
    let (logs, state) = (dir.path().join("logs"), dir.path().join("state"));
    std::fs::create_dir_all(logs.join("real")).unwrap();
    let secret = dir.path().join("shadow");
    write_lines(&secret, (0..20).map(|n| format!("SECRET root:{n}:x")));
    lines(&logs.join("a.log"), 0..20);
    std::os::unix::fs::symlink(&secret, logs.join("shadow.log")).unwrap();
    std::fs::create_dir(logs.join("dir.log")).unwrap();
    let fifo = std::ffi::CString::new(logs.join("fifo.log").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    lines(&logs.join("real/b.log"), 100..120);
    std::os::unix::fs::symlink(logs.join("real/b.log"), logs.join("b.log")).unwrap();

    let tail = pipeline(dir.path(), &logs.join("*.log"), "");
    let run = Run::start(&tail, &state);
    run.wait_for(20, Duration::from_secs(30));
    // Several scans: each skipped path is still reported only once.
    // A sleep, not a wait: ten scan intervals must pass, and nothing counts scans.
    std::thread::sleep(Duration::from_millis(1000));
    let log_text = run.log();
    let events = run.stop();
    assert_eq!(numbers_once(&events), (0..20).collect::<Vec<_>>());
    assert!(!events.iter().any(|e| message(e).contains("SECRET")));
    for name in ["shadow.log", "b.log", "dir.log", "fifo.log"] {
        let reports = log_text
            .lines()
            .filter(|l| l.contains("Matched path is not read") && l.contains(name))
            .count();
        assert_eq!(reports, 1, "{name} reported {reports} times:\n{log_text}");
    }

    // follow_symlinks: a link whose target matches `paths` is read (once,
    // though link and target both match); one that leads out is not.
    let state = dir.path().join("state2");
    let pipeline_path = pipeline_for(
        dir.path(),
        &[&logs.join("*.log"), &logs.join("real/*.log")],
        "follow_symlinks = true",
    );
    let run = Run::start(&pipeline_path, &state);
    run.wait_for(40, Duration::from_secs(30));
    // A sleep, not a wait: a negative check, the link's target must not come twice.
    std::thread::sleep(Duration::from_millis(500));
    let log_text = run.log();
    let events = run.stop();
    let expected: Vec<u64> = (0..20).chain(100..120).collect();
    assert_eq!(numbers_once(&events), expected);
    assert!(!events.iter().any(|e| message(e).contains("SECRET")));
    assert!(
        log_text.contains("which does not match `paths`"),
        "{log_text}"
    );
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn two_thousand_idle_monitoring_connections_do_not_starve_the_daemon() {
    let dir = temp_dir();
    let (logs, state) = (dir.path().join("logs"), dir.path().join("state"));
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("access_log");
    lines(&log, 0..100);
    let pipeline = pipeline(dir.path(), &log, "");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut command = Run::command(&pipeline, &state, &["--metrics-address", &metrics]);
    // The limit a default service gets: 1024 open files, soft and hard.
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let run = Run::spawn(command, &state);
    run.wait_for(100, Duration::from_secs(30));
    wait_health(port, 200, "\"ok\"");

    // 2000 connections that never send a byte (more than the daemon's
    // descriptors), held open while lines keep coming.
    let addr: std::net::SocketAddr = metrics.parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 1500, "only {} connections opened", idle.len());
    for round in 0..5u64 {
        lines(&log, 100 + round * 100..200 + round * 100);
        run.wait_for(200 + round as usize * 100, Duration::from_secs(30));
        // A sleep, not a wait: the writer's pace, lines keep coming while the connections idle.
        std::thread::sleep(Duration::from_millis(200));
    }
    let size = std::fs::metadata(&log).unwrap().len();
    wait_checkpoint(&state, size);
    let fds = open_fds(run.pid());
    assert!(fds < 256, "the daemon holds {fds} descriptors");
    assert!(
        !run.log().contains("Cannot write checkpoints"),
        "{}",
        run.log()
    );
    // Once the silent clients time out, a new one is answered, and a
    // kept-alive connection gets every one of its answers.
    wait_health(port, 200, "");
    drop(idle);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // Read the rest of this answer (content-length bytes after the head).
        let mut text = Vec::new();
        let mut byte = [0u8; 1];
        while !text.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            text.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&text).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).unwrap();
    }
    let events = run.stop();
    // Written 600, delivered 600 exactly once, lost 0.
    assert_eq!(numbers_once(&events), (0..600).collect::<Vec<_>>());
}

/// A stop whose drain deadline passes says so the same way, whichever stage
/// held the events: exit status 3 and a count of what was not delivered.
#[test]
fn a_drain_deadline_that_passes_exits_3_whichever_stage_is_stuck() {
    let dead = free_port(); // nothing listens there
    let outputs = [
        (
            "elasticsearch",
            format!(
                "[[output]]\ntype = \"elasticsearch\"\nhosts = [\"http://127.0.0.1:{dead}\"]\nindex = \"x\"\nsetup = false\n"
            ),
        ),
        (
            "kafka",
            format!(
                "[kafka]\nbrokers = [\"127.0.0.1:{dead}\"]\ntopic = \"x\"\n\n[[output]]\ntype = \"stdout\"\n"
            ),
        ),
    ];
    for (stuck, tail) in outputs {
        let dir = temp_dir();
        let (logs, state) = (dir.path().join("logs"), dir.path().join("state"));
        std::fs::create_dir(&logs).unwrap();
        let log = logs.join("access_log");
        lines(&log, 0..50);
        let pipeline = dir.path().join("p.toml");
        std::fs::write(
            &pipeline,
            format!(
                "name = \"stuck\"\n[[input]]\ntype = \"file\"\npaths = [\"{}\"]\n\n{tail}",
                log.display()
            ),
        )
        .unwrap();
        let daemon = dir.path().join("logpipe.toml");
        std::fs::write(&daemon, "drain_timeout = \"1s\"\n").unwrap();
        let config = daemon.to_string_lossy().into_owned();
        let role = if stuck == "kafka" { "ship" } else { "all" };
        let metrics = common::metrics_address();
        let run = Run::start_with(
            &pipeline,
            &state,
            &[
                "--config",
                &config,
                "--role",
                role,
                "--metrics-address",
                &metrics,
            ],
            None,
        );
        wait_log(&run, "Following new file.");
        // All 50 lines read, so they are in flight at the stop.
        wait_metric(
            &metrics,
            "logpipe_events_in_total",
            &["pipeline=\"stuck\"", "stage=\"input.file\""],
            Duration::from_secs(30),
            |n| n >= 50.0,
        );
        let (status, _) = run.stop_status();
        let text = std::fs::read_to_string(state.with_extension("log")).unwrap();
        assert_eq!(status.code(), Some(3), "{stuck}: {status}\n{text}");
        assert!(
            text.contains("Not delivered when drain_timeout passed")
                && text.contains("stage=input.file"),
            "{stuck}:\n{text}"
        );
        // Nothing checkpointed past what was delivered: all 50 come again.
        let reg = std::fs::read_dir(state.join("checkpoints/stuck"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| std::fs::read(e.unwrap().path()).unwrap());
        if let Some(reg) = reg {
            let v: Value = serde_json::from_slice(&reg).unwrap();
            assert_eq!(v["files"][0]["offset"], 0, "{stuck}: {v}");
        }
    }
}
