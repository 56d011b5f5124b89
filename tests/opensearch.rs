//! The Elasticsearch output against the real OpenSearch 2.19 started by
//! scripts/test.sh (and a node of the test's own where a setting must be
//! set at start): real `429`/`es_rejected_execution_exception` from a tiny
//! write queue, and version detection that needs nothing but `GET /`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use logpipe::dead_letter::DeadLetters;
use logpipe::event::Event;
use logpipe::output::elasticsearch::Elasticsearch;
use logpipe::shutdown::{RunCx, Shutdown};
use serde_json::json;

fn output(dir: &std::path::Path, settings: &str) -> Elasticsearch {
    es_output(dir, settings)
}

/// A node whose write pool has one thread and a queue of one: a bulk
/// request that touches six shards at once has some of its shard requests
/// rejected with 429 by the server itself (`rejected_execution_exception`:
/// OpenSearch's name for Elasticsearch's `es_rejected_execution_exception`).
/// Every rejected item is retried and indexed exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_write_queue_answers_429_and_every_item_is_retried_and_indexed_once() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let (_node, url) = own_opensearch(
        dir.path(),
        &[
            "-Ethread_pool.write.size=1",
            "-Ethread_pool.write.queue_size=1",
        ],
    )
    .await;
    let es = Es::new(&url);
    let index = unique("rejected");
    let (status, body) = es
        .put(
            &index,
            json!({"settings": {"number_of_shards": 6, "number_of_replicas": 0}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The premise, seen directly: the server itself rejects items.
    let mut bulk = String::new();
    for i in 0..200 {
        bulk.push_str(&format!(
            "{{\"index\":{{\"_index\":\"{index}-probe\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    let (status, _) = es
        .put(
            &format!("{index}-probe"),
            json!({"settings": {"number_of_shards": 6, "number_of_replicas": 0}}),
        )
        .await;
    assert_eq!(status, 200);
    let mut rejected = 0;
    for _ in 0..20 {
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!("{url}/_bulk"))
            .header("content-type", "application/x-ndjson")
            .body(bulk.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rejected += r["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                i["index"]["status"] == 429
                    && i["index"]["error"]["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("rejected_execution_exception"))
            })
            .count();
        if rejected > 0 {
            break;
        }
    }
    println!("tiny write queue: {rejected} items of a raw bulk answered 429 rejected_execution_exception");
    assert!(rejected > 0, "the tiny write queue rejected nothing");

    // logpipe through the same server: every event indexed once.
    let total = 3000;
    let events: Vec<Event> = (0..total)
        .map(|i| {
            let mut e = Event::from_message(format!("event {i}"));
            e.fields
                .insert("@timestamp".into(), json!("2026-11-25T10:00:00.000Z"));
            e.fields.insert("n".into(), json!(i));
            e.metadata
                .insert("_id".into(), json!(format!("{index}-{i}")));
            e
        })
        .collect();
    let settings = format!(
        "hosts = \"{url}\"\nindex = \"{index}\"\nbatch_events = 500\nbatch_wait = \"50ms\"\nmax_in_flight = 2"
    );
    let es_out = output(dir.path(), &settings);
    let counters = Arc::clone(&es_out.counters);
    let dl = DeadLetters::new("t", dir.path().join("dead-letter.ndjson"), 1 << 20, 5);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("test"),
        shutdown: Shutdown::default(),
        state_dir: dir.path().to_owned(),
    };
    let task = tokio::spawn(es_out.run(rx, cx, dl));
    let batches: Vec<Vec<Event>> = events.chunks(500).map(<[Event]>::to_vec).collect();
    deliver_all(tx, batches, task, Duration::from_secs(240)).await;
    let c = counters.snapshot();
    let docs = es.count(&index).await;
    println!(
        "tiny write queue: written {total}, indexed {}, retried items {}, dead-lettered {}, documents {docs}",
        c.indexed, c.retried_items, c.dead_lettered
    );
    assert_eq!(c.dead_lettered, 0);
    assert_eq!(c.indexed + c.already_indexed, total as u64);
    assert_eq!(docs, total as u64, "each event once: lost or duplicated");
    assert!(
        c.retried_items > 0,
        "the server rejected nothing of logpipe's"
    );
}

/// Version detection reads `version.distribution` and `version.number` of
/// `GET /`; OpenSearch sends no `X-Elastic-Product` header, and nothing
/// depends on it: setup and indexing just work.
#[tokio::test(flavor = "multi_thread")]
async fn opensearch_is_detected_and_needs_no_elastic_product_header() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let root = reqwest::get(&svc.es).await.unwrap();
    assert!(root.headers().get("x-elastic-product").is_none());
    let body: serde_json::Value = root.json().await.unwrap();
    assert_eq!(body["version"]["distribution"], "opensearch");
    let number = body["version"]["number"].as_str().unwrap().to_owned();

    let prefix = unique("detect");
    let log = dir.path().join("access_log");
    write_lines(&log, (0..20).map(|i| format!("detect {i}")));
    backdate(&log, QUIET);
    let pipeline = dir.path().join("detect.toml");
    std::fs::write(
        &pipeline,
        format!(
            "name = \"detect\"\n[[input]]\ntype = \"file\"\npaths = [\"{}\"]\n[[output]]\ntype = \"elasticsearch\"\nhosts = \"{}\"\nindex = \"{prefix}-%{{+YYYY.MM.dd}}\"\nbatch_wait = \"50ms\"\nsetup = true\n",
            log.display(),
            svc.es
        ),
    )
    .unwrap();
    let out = logpipe().arg("setup").arg(&pipeline).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("OpenSearch {number} found")),
        "{stdout}"
    );

    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &[], std::process::Stdio::null());
    let es = Es::new(&svc.es);
    let pattern = format!("{prefix}-*");
    let docs = eventually(Duration::from_secs(60), "20 documents", || {
        let (es, pattern) = (&es, &pattern);
        async move { Some(es.count(pattern).await).filter(|n| *n >= 20) }
    })
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let log_text = std::fs::read_to_string(state.with_extension("log")).unwrap();
    println!("OpenSearch {number}: written 20, indexed {docs}");
    assert_eq!(es.count(&pattern).await, 20);
    assert!(
        !log_text.to_ascii_lowercase().contains("product"),
        "nothing about a product check: {log_text}"
    );
}
