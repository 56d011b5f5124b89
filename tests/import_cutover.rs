//! The switch from Filebeat to logpipe, and a fleet of both, against the
//! real Kafka and Elasticsearch: Filebeat-shaped messages (as Filebeat 8's
//! Kafka output writes them, without an id) are produced into the topic,
//! logpipe ships and indexes the same topic, and every line is one
//! document, however often it was sent and by whom.
//!
//! - cutover: Filebeat shipped lines 0..200 of a log and re-sent 100..150
//!   (a restart: Filebeat is at-least-once), while its registry stands at
//!   line 150 (it lags what was sent by up to its flush interval).
//!   `logpipe import --filebeat-registry` seeds the checkpoint there and
//!   logpipe reads 150..300: lines 150..200 were then sent twice, once by
//!   each. Exactly 300 documents, 100 answered 409.
//! - mixed fleet: a host still on Filebeat and one on logpipe, one topic,
//!   one indexer: each host's lines once, the Filebeat host's re-sends
//!   answered 409.

mod common;
mod file_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use logpipe::event::line_id::filebeat_line_id;

use common::*;
use file_support::{key_and_value, memlog};

/// Line `i` of host `tag`'s access log on `day`.
fn line(tag: &str, day: &str, i: usize) -> String {
    format!(
        "192.0.2.{} - - [{day}:10:{:02}:{:02} +0000] \"GET /{tag}/{i} HTTP/1.1\" 200 {i} \"-\" \"curl/8.5\"",
        i % 250,
        (i / 60) % 60,
        i % 60
    )
}

/// The offset each of `lines` starts at in a file of them, one a line.
fn line_starts(lines: &[String]) -> Vec<u64> {
    let mut at = 0u64;
    lines
        .iter()
        .map(|l| {
            let start = at;
            at += l.len() as u64 + 1;
            start
        })
        .collect()
}

/// Writes `lines` to `path`; the offset each line starts at.
fn write_log(path: &Path, lines: &[String]) -> Vec<u64> {
    write_lines(path, lines.iter().cloned());
    line_starts(lines)
}

/// The message Filebeat 8's Kafka output (`codec.json`) writes for the line
/// at `offset` of `path` on `host`: no id of its own.
fn filebeat_message(host: &str, path: &Path, offset: u64, line: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "@timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.15.0"},
        "log": {"offset": offset, "file": {"path": path.display().to_string()}},
        "message": line,
        "tags": ["httpd_access"],
        "input": {"type": "log"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": host},
        "agent": {"type": "filebeat", "version": "8.15.0", "name": host},
    }))
    .unwrap()
}

/// Both halves in one pipeline: `log` to the topic, the topic parsed
/// (grok combined + date, so a line's copies share its daily index) into
/// `<prefix>-YYYY.MM.dd`.
fn pipeline(dir: &Path, log: &Path, svc: &Services, topic: &str, prefix: &str) -> PathBuf {
    pipeline_toml("httpd-access")
        .file_input(log)
        .with("tags = [\"httpd_access\"]")
        .kafka(&svc.kafka, topic)
        .group(&format!("{topic}-indexers"))
        .filter("grok")
        .with("match = { message = '^%{HTTPD_COMBINEDLOG}$' }")
        .filter("date")
        .with("field = \"timestamp\"\nformats = [\"dd/MMM/yyyy:HH:mm:ss Z\"]\nremove_field = [\"timestamp\"]")
        .elasticsearch_output(&svc.es, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .with("batch_wait = \"100ms\"")
        .write_to(dir.join("httpd-access.toml"))
}

/// Runs `pipeline` until `documents` are in `pattern` and `duplicates`
/// events were answered 409, then stops it; the 409s counted at its exit.
async fn run_until(
    pipeline: &Path,
    state: &Path,
    es: &Es,
    pattern: &str,
    documents: u64,
    duplicates: u64,
) -> u64 {
    let log = state.with_extension("log");
    let mut child = run_command(pipeline, state, &[], Stdio::null())
        .env("RUST_LOG", "info,logpipe::output::elasticsearch=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(120),
        &format!("{documents} documents and {duplicates} answered 409"),
        || async {
            (es.count(pattern).await >= documents && duplicates_logged(&log) >= duplicates)
                .then_some(())
        },
    )
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    duplicates_logged(&log)
}

/// Per message, the ids of the documents holding it, and per host name
/// how many documents it has.
async fn documents(es: &Es, pattern: &str) -> (HashMap<String, Vec<String>>, HashMap<String, u64>) {
    let mut by_message: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_host: HashMap<String, u64> = HashMap::new();
    for hit in es.search_all(pattern, 10_000).await {
        let source = &hit["_source"];
        let message = source["message"].as_str().unwrap_or_default().to_owned();
        by_message
            .entry(message)
            .or_default()
            .push(hit["_id"].as_str().unwrap_or_default().to_owned());
        let host = source["host"]["name"].as_str().unwrap_or_default();
        *by_host.entry(host.to_owned()).or_default() += 1;
    }
    (by_message, by_host)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_shipped_by_filebeat_and_again_by_logpipe_is_one_document() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("cutover");
    let prefix = unique("cutover-idx");
    create_topic(&svc.kafka, &topic, 1).await;
    let (day, iso_day) = random_day();
    let index_day = iso_day.replace('-', ".");
    let host = logpipe::host::name();
    let log = dir.path().join("access_log");
    let lines: Vec<String> = (0..300).map(|i| line("cut", &day, i)).collect();
    let offsets = write_log(&log, &lines);

    // Filebeat shipped 0..200 and, after a restart, 100..150 again.
    let sent = (0..200).chain(100..150);
    let bodies = sent.map(|i| (None, filebeat_message(host, &log, offsets[i], &lines[i])));
    produce(&svc.kafka, &topic, bodies).await;
    // Its registry stands at line 150: the flush had not caught up.
    let data = dir.path().join("filebeat");
    memlog(&data, &[key_and_value(&log, &log, offsets[150])], &[]);

    let pipeline = pipeline(dir.path(), &log, &svc, &topic, &prefix);
    let state = dir.path().join("state");
    let out = logpipe()
        .arg("import")
        .arg("--filebeat-registry")
        .arg(data.join("registry"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--pipelines")
        .arg(&pipeline)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", output_text(&out));
    assert!(
        stdout.contains(&format!("continue at {}", offsets[150])),
        "{stdout}"
    );

    let es = Es::new(&svc.es);
    let pattern = format!("{prefix}-*");
    let duplicates = run_until(&pipeline, &state, &es, &pattern, 300, 100).await;
    assert_eq!(es.count(&pattern).await, 300, "every line once");
    assert_eq!(
        duplicates, 100,
        "Filebeat's re-sends (50) and the lines both shipped (50) answered 409"
    );
    assert_eq!(
        es.indices(&pattern).await,
        vec![format!("{prefix}-{index_day}")]
    );
    let (by_message, _) = documents(&es, &pattern).await;
    assert_eq!(by_message.len(), 300);
    for (i, text) in lines.iter().enumerate() {
        let ids = &by_message[text];
        assert_eq!(ids.len(), 1, "line {i}: {ids:?}");
        let path = log.display().to_string();
        assert_eq!(
            ids[0],
            filebeat_line_id(host, &path, offsets[i], text).as_ref() as &str,
            "line {i}: the id Filebeat's message of it gets, whoever sent it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_of_filebeat_and_logpipe_hosts_shares_one_topic_and_indexer() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("fleet");
    let prefix = unique("fleet-idx");
    create_topic(&svc.kafka, &topic, 2).await;
    let (day, _) = random_day();

    // web-fb still runs Filebeat: 100 lines, the last 50 sent twice.
    let fb_log = PathBuf::from("/var/log/httpd/access_log");
    let fb_lines: Vec<String> = (0..100).map(|i| line("fb", &day, i)).collect();
    let fb_offsets = line_starts(&fb_lines);
    let bodies = (0..100).chain(50..100).map(|i| {
        (
            None,
            filebeat_message("web-fb", &fb_log, fb_offsets[i], &fb_lines[i]),
        )
    });
    produce(&svc.kafka, &topic, bodies).await;

    // This host runs logpipe, both halves, into the same topic.
    let log = dir.path().join("access_log");
    write_log(
        &log,
        &(0..200).map(|i| line("lp", &day, i)).collect::<Vec<_>>(),
    );
    let pipeline = pipeline(dir.path(), &log, &svc, &topic, &prefix);
    let es = Es::new(&svc.es);
    let pattern = format!("{prefix}-*");
    let state = dir.path().join("state");
    let duplicates = run_until(&pipeline, &state, &es, &pattern, 300, 50).await;
    assert_eq!(
        es.count(&pattern).await,
        300,
        "every line of both hosts once"
    );
    assert_eq!(duplicates, 50, "web-fb's re-sends answered 409");
    let (by_message, by_host) = documents(&es, &pattern).await;
    assert_eq!(by_message.len(), 300);
    assert!(by_message.values().all(|ids| ids.len() == 1));
    assert_eq!(by_host.get("web-fb"), Some(&100), "{by_host:?}");
    assert_eq!(
        by_host.get(logpipe::host::name()),
        Some(&200),
        "{by_host:?}"
    );
}
