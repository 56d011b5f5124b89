//! The books of a running daemon (`logpipe::accounting`): every event read
//! ends in one outcome per output — delivered, already indexed, dead-lettered,
//! dropped by a filter, not for that output — or is in flight; `/metrics`
//! shows them while it runs and the log has them when it stops. Against a
//! real OpenSearch the figures also match what the index holds.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

fn books_metric(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metric_sample(metrics, name, labels).unwrap_or(-1.0)
}

/// A daemon running `pipeline` with its state in `state` (its log in
/// `state.log`), its monitoring endpoint on a free port and `env` set; the
/// child and the endpoint's address.
fn daemon(pipeline: &Path, state: &Path, stdout: Stdio, env: &[(&str, &str)]) -> (Child, String) {
    let addr = metrics_address();
    let child = run_command(pipeline, state, &["--metrics-address", &addr], stdout)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    (child, addr)
}

/// 1000 lines; a filter drops the 100 that end in 7; a `null` output takes
/// every other event and a `stdout` output only the odd ones: the books of
/// each output add up to the 1000 read, while the daemon runs and when it
/// stops.
#[test]
fn every_event_read_has_one_outcome_at_every_output() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..1000).map(|i| format!("line {i}")));
    let pipeline = pipeline_toml("books")
        .file_input(&log)
        .filter("drop")
        .with("if = '[message] =~ /7$/'")
        .with("[[output]]\ntype = \"null\"\nid = \"all\"")
        .stdout_output()
        .with("id = \"odd\"\nif = '[message] =~ /[13579]$/'")
        .write_to(dir.path().join("books.toml"));
    let stderr = dir.path().join("state.log");
    let (mut child, addr) = daemon(&pipeline, &dir.path().join("state"), Stdio::piped(), &[]);
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().take(400).count()
    });
    assert_eq!(printed.join().unwrap(), 400, "odd lines not ending in 7");

    let half = "half=\"whole\"";
    let metrics = wait_until(
        Duration::from_secs(20),
        "books with 1000 read and nothing in flight",
        || {
            let (_, text) = http_get(&addr, "/metrics")?;
            (books_metric(&text, "logpipe_books_read_total", &[half]) == 1000.0
                && books_metric(&text, "logpipe_books_in_flight_events", &[half]) == 0.0)
                .then_some(text)
        },
    );
    let outcome = |output: &str, outcome: &str| {
        books_metric(
            &metrics,
            "logpipe_books_outcomes_total",
            &[
                half,
                &format!("output=\"{output}\""),
                &format!("outcome=\"{outcome}\""),
            ],
        )
    };
    assert_eq!(
        books_metric(&metrics, "logpipe_books_filtered_total", &[half]),
        100.0
    );
    assert_eq!(outcome("all", "delivered"), 900.0);
    assert_eq!(outcome("all", "skipped"), 0.0);
    assert_eq!(outcome("odd", "delivered"), 400.0);
    assert_eq!(outcome("odd", "skipped"), 500.0);
    for output in ["all", "odd"] {
        assert_eq!(
            books_metric(
                &metrics,
                "logpipe_books_balanced",
                &[half, &format!("output=\"{output}\"")]
            ),
            1.0,
            "{metrics}"
        );
    }
    assert_eq!(
        books_metric(
            &metrics,
            "logpipe_books_acknowledged_total",
            &[half, "status=\"delivered\""]
        ),
        1000.0
    );
    assert_eq!(
        books_metric(&metrics, "logpipe_books_in_flight_batches", &[half]),
        0.0
    );

    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let log = std::fs::read_to_string(&stderr).unwrap();
    let closed = closed_books(&log);
    assert_eq!(closed.len(), 2, "{log}");
    for books in &closed {
        books.assert_exact(&format!("output {}", books.output));
        assert_eq!((books.read, books.filtered), (1000, 100));
    }
    let odd = closed.iter().find(|b| b.output == "odd").unwrap();
    assert_eq!((odd.delivered, odd.skipped), (400, 500));
}

/// The index half of a real route: 50 JSON lines, one with a field the
/// index maps as a number but that holds text (a mapping conflict). The
/// first run indexes 49 and dead-letters 1; a second run from a fresh
/// state directory reads every line again and finds the 49 already
/// indexed. Both runs' books balance, and OpenSearch holds what the first
/// run's books say it indexed.
#[tokio::test(flavor = "multi_thread")]
async fn the_books_agree_with_what_the_index_holds_across_a_replay() {
    let Some(svc) = services() else {
        return;
    };
    let es = Es::new(&svc.es);
    let index = unique("books");
    let (status, body) = es
        .put(
            &index,
            json!({"mappings": {"properties": {"code": {"type": "long"}}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let dir = temp_dir();
    let log = dir.path().join("app.json");
    write_lines(
        &log,
        (0..50).map(|i| {
            if i == 20 {
                r#"{"code": "not a number"}"#.to_owned()
            } else {
                format!(r#"{{"code": {i}}}"#)
            }
        }),
    );
    let pipeline = pipeline_toml("books-es")
        .file_input(&log)
        .filter("json")
        .with("source = \"message\"")
        .elasticsearch_output(&svc.es, &index)
        .with("id = \"es\"\nbatch_wait = \"100ms\"")
        .write_to(dir.path().join("p.toml"));

    let run = |state: &str| {
        let stderr = dir.path().join(format!("{state}.log"));
        let (mut child, addr) = daemon(&pipeline, &dir.path().join(state), Stdio::null(), &[]);
        wait_until(Duration::from_secs(60), "50 events settled", || {
            let (_, text) = http_get(&addr, "/metrics")?;
            (books_metric(
                &text,
                "logpipe_books_acknowledged_total",
                &["half=\"whole\"", "status=\"delivered\""],
            ) == 50.0)
                .then_some(())
        });
        sigterm(&child);
        assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
        closed_books_of(&stderr, "whole")
    };

    let first = run("first");
    first.assert_exact("first run");
    assert_eq!(
        (first.read, first.delivered, first.dead_lettered),
        (50, 49, 1)
    );
    es.refresh(&index).await;
    assert_eq!(
        es.count(&index).await,
        first.delivered,
        "the index holds what the books say was indexed"
    );

    let replay = run("replay");
    replay.assert_exact("replay");
    assert_eq!(
        (
            replay.read,
            replay.delivered,
            replay.already_indexed,
            replay.dead_lettered
        ),
        (50, 0, 49, 1),
        "every line again: the 49 meet their documents, the conflict is refused again"
    );
    es.refresh(&index).await;
    assert_eq!(es.count(&index).await, 49, "no document twice");
}

/// Books that do not balance are seen while the daemon runs: logged with
/// the figures, in `/health` and in `logpipe top`, and in the last word.
/// (A test-only hook leaves one event out of an output's books, as a bug
/// that drops an event silently would.)
#[test]
fn books_that_do_not_balance_are_logged_and_shown_in_health_and_top() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..200).map(|i| format!("line {i}")));
    let pipeline = pipeline_toml("lossy")
        .file_input(&log)
        .with("[[output]]\ntype = \"null\"\nid = \"leaky\"")
        .write_to(dir.path().join("lossy.toml"));
    let stderr = dir.path().join("state.log");
    let (mut child, addr) = daemon(
        &pipeline,
        &dir.path().join("state"),
        Stdio::null(),
        &[("LOGPIPE_TEST_UNCOUNTED", "leaky")],
    );
    let health = wait_until(Duration::from_secs(20), "/health naming the books", || {
        let (status, body) = http_get(&addr, "/health")?;
        (status == 503 && body.contains("books[whole]")).then_some(body)
    });
    assert!(
        health.contains("leaky: 1 events were acknowledged with no outcome"),
        "{health}"
    );
    let logged = wait_for_text(
        &stderr,
        "The books do not balance",
        1,
        Duration::from_secs(10),
    );
    assert!(logged.contains("read=200"), "{logged}");
    let top = logpipe()
        .args([
            "top",
            "--iterations",
            "1",
            "--interval",
            "0.2",
            "--metrics-address",
            &addr,
        ])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&top.stdout);
    assert!(
        screen.contains(
            "lossy: books (whole): read 200, in flight 0 event(s) in 0 batch(es), DO NOT BALANCE"
        ),
        "{screen}"
    );
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30));
    let closed = closed_books(&std::fs::read_to_string(&stderr).unwrap());
    assert_eq!(closed.len(), 1);
    assert!(!closed[0].balanced, "{closed:?}");
    assert_eq!((closed[0].read, closed[0].delivered), (200, 199));
}
