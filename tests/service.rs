//! Running as a service: systemd notifications and reload on SIGHUP.

mod common;

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn file_pipeline(
    dir: &std::path::Path,
    name: &str,
    log: &std::path::Path,
    tag: &str,
) -> std::path::PathBuf {
    pipeline_toml(name)
        .file_input(log)
        .with(&format!(
            "tags = [{}]\npoll_interval = \"50ms\"",
            quote(tag)
        ))
        .stdout_output()
        .write_to(dir.join(format!("{name}.toml")))
}

/// `logpipe run PIPELINE` as systemd starts it: notifications to a socket
/// this test reads (`timeout` for each read), a 200 ms watchdog, `env` on
/// top, stderr to `stderr`.
fn run_notified(
    dir: &std::path::Path,
    pipeline: &std::path::Path,
    timeout: Duration,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> (std::process::Child, UnixDatagram) {
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut command = logpipe();
    command
        .arg("run")
        .arg(pipeline)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    (command.spawn().unwrap(), socket)
}

fn wait_for_log(log: &std::path::Path, needle: &str, count: usize) {
    wait_for_text(log, needle, count, Duration::from_secs(30));
}

#[test]
fn systemd_hears_ready_watchdog_pings_and_stopping() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..10).map(|i| format!("line {i}")));
    let pipeline = file_pipeline(dir.path(), "notify", &log, "t");
    let (mut child, socket) = run_notified(
        dir.path(),
        &pipeline,
        Duration::from_secs(10),
        &[],
        Stdio::null(),
    );
    let mut buf = [0u8; 512];
    let mut seen: Vec<String> = Vec::new();
    let mut read = |seen: &mut Vec<String>| {
        let n = socket.recv(&mut buf).expect("a notification");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    };
    while !seen.iter().any(|m| m.contains("READY=1")) {
        read(&mut seen);
    }
    let pings_before = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    while seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() < pings_before + 3 {
        read(&mut seen);
    }
    sigterm(&child);
    while !seen.iter().any(|m| m.contains("STOPPING=1")) {
        read(&mut seen);
    }
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert!(
        seen.iter().position(|m| m.contains("READY=1"))
            < seen.iter().position(|m| m.contains("STOPPING=1"))
    );
}

/// A stage stuck in one step (the test-only `LOGPIPE_TEST_WEDGE` hook
/// blocks a filter worker for good) stops the watchdog pings, so systemd
/// would restart the service; the daemon says which stage.
#[test]
fn a_wedged_stage_stops_the_watchdog_pings() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..10).map(|i| format!("line {i}")));
    let pipeline = file_pipeline(dir.path(), "wedged", &log, "t");
    let daemon_log = dir.path().join("daemon.log");
    // Pings every 100 ms while healthy; a 2 s silence means they stopped.
    let (mut child, socket) = run_notified(
        dir.path(),
        &pipeline,
        Duration::from_secs(2),
        &[("LOGPIPE_TEST_WEDGE", "filter")],
        std::fs::File::create(&daemon_log).unwrap().into(),
    );
    let mut buf = [0u8; 512];
    let started = std::time::Instant::now();
    let mut pings = 0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the pings went on for 30 s with a wedged stage ({pings} pings)"
        );
        match socket.recv(&mut buf) {
            Ok(n) => {
                if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                    pings += 1;
                }
            }
            Err(_) => break,
        }
    }
    wait_for_log(&daemon_log, "no longer pinging the systemd watchdog", 1);
    let text = std::fs::read_to_string(&daemon_log).unwrap();
    assert!(
        text.contains("stage=\"filter\"") || text.contains("stage=filter"),
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
    // The healthy daemon pinged before the wedge was old enough to count.
    assert!(pings > 0, "no ping at all before the wedge");
}

/// A pipeline held back by an Elasticsearch that does not answer is
/// retrying, not wedged: the pings go on.
#[test]
fn a_stage_waiting_for_an_unreachable_elasticsearch_keeps_the_pings_going() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..100).map(|i| format!("line {i}")));
    // Port 9 (discard) on loopback: nothing listens, every request fails.
    let pipeline = pipeline_toml("held")
        .file_input(&log)
        .with("poll_interval = \"50ms\"")
        .elasticsearch_output("http://127.0.0.1:9", "held")
        .write_to(dir.path().join("held.toml"));
    let (mut child, socket) = run_notified(
        dir.path(),
        &pipeline,
        Duration::from_secs(5),
        &[],
        Stdio::null(),
    );
    let mut buf = [0u8; 512];
    let mut ready = false;
    while !ready {
        let n = socket.recv(&mut buf).expect("READY=1");
        ready = String::from_utf8_lossy(&buf[..n]).contains("READY=1");
    }
    // 3 s of retrying at one ping per 100 ms: well over 15 pings, none
    // missing for more than the threshold of one second.
    let started = std::time::Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let n = socket
            .recv(&mut buf)
            .expect("a ping within 5 s while retrying");
        if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
            pings += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(pings >= 15, "{pings} pings in 3 s while retrying");
}

#[test]
fn sighup_applies_a_changed_file_keeps_the_old_version_of_a_broken_one_and_loses_nothing() {
    let dir = temp_dir();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    file_pipeline(&pipelines, "a", &a_log, "v1");
    file_pipeline(&pipelines, "b", &b_log, "v1");
    write_lines(&a_log, (0..1000).map(|i| format!("a {i:05}")));
    write_lines(&b_log, (0..1000).map(|i| format!("b {i:05}")));

    let state = dir.path().join("state");
    let log = state.with_extension("log");
    let mut child = spawn_run(&pipelines, &state, &[], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(serde_json::from_str(&line).unwrap());
        }
    });
    let mut events = Vec::new();
    let collect = |events: &mut Vec<serde_json::Value>, total: usize| {
        while events.len() < total {
            events.push(rx.recv_timeout(Duration::from_secs(30)).expect("events"));
        }
    };
    collect(&mut events, 2000);

    // A changed file: restarted from its checkpoint with the new settings.
    file_pipeline(&pipelines, "a", &a_log, "v2");
    let hup = |child: &std::process::Child| {
        std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
    };
    hup(&child);
    wait_for_log(&log, "Reload done.", 1);
    write_lines(&a_log, (1000..2000).map(|i| format!("a {i:05}")));
    write_lines(&b_log, (1000..2000).map(|i| format!("b {i:05}")));
    collect(&mut events, 4000);

    // A broken file: reported, and the running version keeps going.
    std::fs::write(
        pipelines.join("a.toml"),
        "name = \"a\"\n[[input]]\ntype = \"file\"\npathz = []\n",
    )
    .unwrap();
    hup(&child);
    wait_for_log(&log, "Reload done.", 2);
    write_lines(&a_log, (2000..2500).map(|i| format!("a {i:05}")));
    collect(&mut events, 4500);
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "nothing repeated"
    );
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());

    let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &events {
        by_message
            .entry(e["message"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["tags"][0].as_str().unwrap().to_owned());
    }
    assert_eq!(by_message.len(), 4500, "every line once");
    for (message, tags) in &by_message {
        assert_eq!(tags.len(), 1, "{message} delivered {} times", tags.len());
        let (file, n): (&str, usize) = {
            let mut parts = message.split(' ');
            (
                parts.next().unwrap(),
                parts.next().unwrap().parse().unwrap(),
            )
        };
        let want = if file == "a" && n >= 1000 { "v2" } else { "v1" };
        assert_eq!(tags[0], want, "{message}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("invalid pipeline file"), "{text}");
    let starts = |name: &str| {
        text.lines()
            .filter(|l| l.contains("Pipeline started.") && l.contains(&format!("pipeline={name} ")))
            .count()
    };
    assert_eq!(starts("b"), 1, "the unchanged pipeline ran untouched");
    assert_eq!(starts("a"), 2, "the changed pipeline restarted once");
}
