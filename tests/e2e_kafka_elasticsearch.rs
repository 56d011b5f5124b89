//! The whole route against the real services: a file input ships through a
//! real Kafka broker and is bulk-indexed into a real Elasticsearch-compatible
//! server, under a date-stamped index.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn file_to_kafka_to_elasticsearch() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("e2e");
    let prefix = unique("e2e-idx");
    create_topic(&svc.kafka, &topic, 3).await;

    let log = dir.path().join("access_log");
    let lines: Vec<String> = (0..500)
        .map(|i| {
            format!(
                "192.0.2.{} - - [25/Nov/2026:10:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {i}",
                i % 250
            )
        })
        .collect();
    write_lines(&log, lines.clone());

    let pipeline = pipeline_toml("e2e")
        .file_input(&log)
        .with("tags = [\"httpd_access\"]")
        .kafka(&svc.kafka, &topic)
        .group(&format!("{topic}-group"))
        .elasticsearch_output(&svc.es, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .with("batch_wait = \"200ms\"")
        .write_to(dir.path().join("e2e.toml"));

    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &["--role", "all"], Stdio::null());
    let es = Es::new(&svc.es);
    let pattern = format!("{prefix}-*");
    eventually(
        Duration::from_secs(120),
        "500 documents in Elasticsearch",
        || async { (es.count(&pattern).await >= 500).then_some(()) },
    )
    .await;
    // A moment for stragglers: the count must stay exact (a sleep, not a
    // wait: a negative check).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(es.count(&pattern).await, 500);

    let hits = es.search_all(&pattern, 1000).await;
    assert_eq!(hits.len(), 500);
    let mut messages: Vec<String> = hits
        .iter()
        .map(|h| h["_source"]["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(messages, expected, "every line indexed exactly once");

    let first = &hits[0];
    assert_eq!(
        first["_source"]["tags"],
        serde_json::json!(["httpd_access"])
    );
    assert_eq!(
        first["_source"]["log"]["file"]["path"],
        log.display().to_string()
    );
    assert!(
        first["_source"].get("@metadata").is_none(),
        "metadata is never indexed"
    );
    let id = first["_id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "the origin id is the document id: {id}");

    // The index is stamped with the UTC day of the event's own @timestamp.
    let ts = first["_source"]["@timestamp"].as_str().unwrap();
    let day = chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let want = format!("{prefix}-{}", day.format("%Y.%m.%d"));
    assert_eq!(first["_index"].as_str().unwrap(), want);
    assert!(es.indices(&pattern).await.contains(&want));

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");
}
