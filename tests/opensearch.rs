//! The Elasticsearch output against the real OpenSearch 2.19 and
//! Elasticsearch 7.17 started by scripts/test.sh (and nodes of the test's
//! own where a setting must be set at start): real
//! `429`/`es_rejected_execution_exception` from a tiny write queue, and
//! version detection that needs nothing but `GET /`.

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
    let (_node, url) = own_opensearch(dir.path(), &TINY_WRITE_QUEUE).await;
    tiny_write_queue("OpenSearch", &url, dir.path()).await;
}

/// The same against Elasticsearch, whose rejection is called
/// `es_rejected_execution_exception`.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_write_queue_of_elasticsearch_answers_429_and_every_item_is_indexed_once() {
    let Some(_es) = elasticsearch() else { return };
    let dir = temp_dir();
    let (_node, url) = own_elasticsearch(dir.path(), &TINY_WRITE_QUEUE).await;
    tiny_write_queue("Elasticsearch", &url, dir.path()).await;
}

async fn tiny_write_queue(server: &str, url: &str, dir: &std::path::Path) {
    let es = Es::new(url);
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
    println!("{server} tiny write queue: {rejected} items of a raw bulk answered 429 rejected_execution_exception");
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
    let es_out = output(dir, &settings);
    let counters = Arc::clone(&es_out.counters);
    let dl = DeadLetters::new("t", dir.join("dead-letter.ndjson"), 1 << 20, 5);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("test"),
        shutdown: Shutdown::default(),
        state_dir: dir.to_owned(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let task = tokio::spawn(es_out.run(rx, cx, dl));
    let batches: Vec<Vec<Event>> = events.chunks(500).map(<[Event]>::to_vec).collect();
    deliver_all(tx, batches, task, Duration::from_secs(240)).await;
    let c = counters.snapshot();
    let docs = es.count(&index).await;
    println!(
        "{server} tiny write queue: written {total}, indexed {}, retried items {}, dead-lettered {}, documents {docs}",
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
    setup_and_index(&svc.es, &format!("OpenSearch {number}"), dir.path()).await;
}

/// Elasticsearch is told apart by `GET /` too (no `distribution`; it does
/// send `X-Elastic-Product`, which nothing needs); its OSS build has no
/// `wildcard`, so the template types `url.original` as keyword there.
#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_is_detected_from_its_version_and_set_up_for_its_build() {
    let Some(url) = elasticsearch() else { return };
    let dir = temp_dir();
    let root = reqwest::get(&url).await.unwrap();
    assert_eq!(
        root.headers()
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok()),
        Some("Elasticsearch")
    );
    let body: serde_json::Value = root.json().await.unwrap();
    assert!(body["version"].get("distribution").is_none(), "{body}");
    let number = body["version"]["number"].as_str().unwrap().to_owned();
    let prefix = setup_and_index(&url, &format!("Elasticsearch {number}"), dir.path()).await;
    let es = Es::new(&url);
    let (status, template) = es.get(&format!("_index_template/logpipe-{prefix}")).await;
    assert_eq!(status, 200, "{template}");
    let url_type = &template["index_templates"][0]["index_template"]["template"]["mappings"]
        ["properties"]["url"]["properties"]["original"]["type"];
    println!(
        "Elasticsearch {number} ({}): url.original is {url_type}",
        body["version"]["build_flavor"]
    );
    let want = if body["version"]["build_flavor"] == "oss" {
        "keyword"
    } else {
        "wildcard"
    };
    assert_eq!(url_type, want, "{template}");
}

/// `logpipe setup` then `logpipe run` of a file into `url`: setup names the
/// server as `found`, and the 20 lines are indexed. Returns the index prefix.
async fn setup_and_index(url: &str, found: &str, dir: &std::path::Path) -> String {
    let prefix = unique("detect");
    let log = dir.join("access_log");
    write_lines(&log, (0..20).map(|i| format!("detect {i}")));
    backdate(&log, QUIET);
    let pipeline = pipeline_toml("detect")
        .file_input(&log)
        .elasticsearch_output(url, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .with("batch_wait = \"50ms\"\nsetup = true")
        .write_to(dir.join("detect.toml"));
    let out = logpipe().arg("setup").arg(&pipeline).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{found} found")), "{stdout}");

    let state = dir.join("state");
    let mut child = spawn_run(&pipeline, &state, &[], std::process::Stdio::null());
    let es = Es::new(url);
    let pattern = format!("{prefix}-*");
    let docs = eventually(Duration::from_secs(60), "20 documents", || {
        let (es, pattern) = (&es, &pattern);
        async move { Some(es.count(pattern).await).filter(|n| *n >= 20) }
    })
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let log_text = std::fs::read_to_string(state.with_extension("log")).unwrap();
    println!("{found}: written 20, indexed {docs}");
    assert_eq!(es.count(&pattern).await, 20);
    assert!(
        !log_text.to_ascii_lowercase().contains("product"),
        "nothing about a product check: {log_text}"
    );
    prefix
}
