//! `data_stream` on the Elasticsearch output, against the real OpenSearch of
//! the test command (data streams are core there) and the real
//! Elasticsearch 7.17 OSS build (which has none: refused with a reason).
//! The output runs in-process with crafted events, as in
//! `elasticsearch_output.rs`, so `@timestamp` and ids are what the test says.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logpipe::dead_letter::DeadLetters;
use logpipe::event::Event;
use logpipe::output::elasticsearch::stats::Snapshot;
use logpipe::output::elasticsearch::Elasticsearch;
use logpipe::shutdown::{RunCx, Shutdown};
use serde_json::{json, Value};

fn event(i: usize, id_prefix: &str) -> Event {
    let mut e = Event::from_message(format!("event {i}"));
    e.fields
        .insert("@timestamp".into(), json!("2026-12-03T06:00:00.000Z"));
    e.fields.insert("n".into(), json!(i));
    e.metadata
        .insert("_id".into(), json!(format!("{id_prefix}-{i}")));
    e
}

/// Runs the output over `events` (batches of 50) until its input closes;
/// returns its counters.
async fn index(es: Elasticsearch, events: Vec<Event>, dead_letters: DeadLetters) -> Snapshot {
    let counters = Arc::clone(&es.counters);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = run_cx();
    let task = tokio::spawn(es.run(rx, cx, dead_letters));
    let mut batches = Vec::new();
    let mut it = events.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(50).collect());
    }
    deliver_all(tx, batches, task, Duration::from_secs(120)).await;
    counters.snapshot()
}

fn run_cx() -> RunCx {
    RunCx {
        pipeline: Arc::from("data-stream"),
        shutdown: Shutdown::default(),
        state_dir: std::env::temp_dir(),
        books: logpipe::accounting::Books::detached("test"),
    }
}

fn settings(url: &str, stream: &str) -> String {
    format!(
        "hosts = \"{url}\"\ndata_stream = \"{stream}\"\nbatch_events = 100\nbatch_wait = \"20ms\""
    )
}

/// A pipeline file whose output writes to `stream`, with `extra` settings.
fn setup_pipeline(dir: &Path, url: &str, stream: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("ds.toml");
    std::fs::write(
        &path,
        format!(
            "[[input]]\ntype = \"file\"\npaths = [\"/nonexistent\"]\n[[output]]\ntype = \"elasticsearch\"\n{}\n{extra}",
            settings(url, stream)
        ),
    )
    .unwrap();
    path
}

/// The whole life of a data stream output on OpenSearch: the output
/// installs the template as it starts (no `setup` needed), the stream is
/// made by the first write, documents land in its `.ds-` backing index, a
/// replay is recognised (409) while the write index is the same, an event
/// without `@timestamp` is dead-lettered with the server's reason, and
/// after
/// a rollover a replay is indexed again: the duplicate the README warns of.
#[tokio::test(flavor = "multi_thread")]
async fn events_go_to_a_data_stream_and_a_replay_is_recognised_until_a_rollover() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let stream = format!("logs-{}-test", unique("ds").replace('-', "."));
    let es = Es::new(&svc.es);
    // A writer flushes as its last handle goes: one per run.
    let dl = |name: &str| DeadLetters::new("t", dir.path().join(name), 1 << 20, 5);
    let events: Vec<Event> = (0..300).map(|i| event(i, &stream)).collect();
    let out = || es_output(dir.path(), &settings(&svc.es, &stream));

    let first = index(out(), events.clone(), dl("first.ndjson")).await;
    assert_eq!(first.indexed, 300, "{first:?}");
    let (status, body) = es.get(&format!("_data_stream/{stream}")).await;
    assert_eq!(status, 200, "{body}");
    let ds = &body["data_streams"][0];
    assert_eq!(ds["name"], stream.as_str());
    assert_eq!(ds["template"], format!("logpipe-{stream}"));
    assert_eq!(ds["indices"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(es.count(&stream).await, 300);
    let hits = es.search_all(&stream, 5).await;
    assert!(
        hits.iter()
            .all(|h| h["_index"].as_str().is_some_and(|i| i.starts_with(".ds-"))),
        "documents live in the backing index: {hits:?}"
    );

    let again = index(out(), events.clone(), dl("again.ndjson")).await;
    assert_eq!(
        (again.indexed, again.already_indexed),
        (0, 300),
        "a replay into the same write index is recognised"
    );
    assert_eq!(es.count(&stream).await, 300);

    let mut untimed = Event::from_message("no time".to_owned());
    untimed.fields.remove("@timestamp");
    untimed
        .metadata
        .insert("_id".into(), json!(format!("{stream}-untimed")));
    let lone = index(out(), vec![untimed], dl("dl.ndjson")).await;
    assert_eq!(lone.dead_lettered, 1, "{lone:?}");
    let records: Vec<Value> = std::fs::read_to_string(dir.path().join("dl.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    let reason = records[0].to_string();
    assert!(
        reason.contains("@timestamp"),
        "the reason names it: {reason}"
    );

    let (status, body) = es.post(&format!("{stream}/_rollover"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let after = index(out(), events, dl("after.ndjson")).await;
    assert_eq!(
        (after.indexed, after.already_indexed),
        (300, 0),
        "after a rollover an id is checked against the new write index only"
    );
    assert_eq!(
        es.count(&stream).await,
        600,
        "the duplicates README warns of"
    );
}

/// `logpipe setup --check` of a data stream output: missing before, in
/// place after `logpipe setup`; with `retention`, the lifecycle policy is
/// planned too, and an OpenSearch without ISM is told apart (exit 1 with
/// the plugin named) while the template is still checked.
#[tokio::test(flavor = "multi_thread")]
async fn setup_installs_and_checks_the_data_stream_template() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let stream = format!("logs-{}-setup", unique("ds").replace('-', "."));
    let path = setup_pipeline(dir.path(), &svc.es, &stream, "retention = \"7d\"\n");
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        output_text(&out).contains(&format!("template _index_template/logpipe-{stream}"))
            && output_text(&out).contains("DRIFT: missing"),
        "{}",
        output_text(&out)
    );
    // The test OpenSearch has no ISM plugin: setup names what it needs, and
    // installs nothing (the policy comes before the template).
    let out = run_setup(&path, false);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("opensearch-index-management"),
        "{}",
        output_text(&out)
    );
    // Without retention, the template alone: installed, then in place.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("retention = \"7d\"\n", ""),
    )
    .unwrap();
    let out = run_setup(&path, false);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("in place"),
        "{}",
        output_text(&out)
    );
    let es = Es::new(&svc.es);
    let (status, body) = es.get(&format!("_index_template/logpipe-{stream}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["index_templates"][0]["index_template"]["data_stream"],
        json!({"timestamp_field": {"name": "@timestamp"}}),
        "{body}"
    );
}

/// Elasticsearch's OSS build has no data streams: `setup` says so and
/// which builds have them, rather than letting the first write make a
/// plain index of that name.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_data_streams_is_refused_with_the_reason() {
    let Some(url) = elasticsearch() else { return };
    let dir = temp_dir();
    let stream = format!("logs-{}-oss", unique("ds").replace('-', "."));
    let path = setup_pipeline(dir.path(), &url, &stream, "");
    let out = run_setup(&path, false);
    assert_ne!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("`data_stream` needs data streams")
            && output_text(&out).contains("OSS build"),
        "{}",
        output_text(&out)
    );
    // The output itself (which installs its template as it starts) ends
    // with that reason instead of sending.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = run_cx();
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let output = es_output(dir.path(), &settings(&url, &stream));
    let ended = tokio::time::timeout(Duration::from_secs(30), output.run(rx, cx, dl))
        .await
        .expect("the output ends by itself");
    drop(tx);
    let e = ended.expect_err("a fatal error").to_string();
    assert!(e.contains("OSS build"), "{e}");
    let es = Es::new(&url);
    let (status, _) = es.get(&stream).await;
    assert_eq!(status, 404, "nothing was made");
}
