//! The Elasticsearch output against the real Elasticsearch-compatible
//! server, run in-process with crafted events (so `@timestamp` and ids are
//! exactly what the test says), with a fault-injecting proxy in between where
//! the test needs faults.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::{Fault, Proxy};
use common::*;
use logpipe::ack::AckTracker;
use logpipe::dead_letter::DeadLetters;
use logpipe::event::{Batch, Event};
use logpipe::output::elasticsearch::stats::Snapshot;
use logpipe::output::elasticsearch::Elasticsearch;
use logpipe::shutdown::{RunCx, Shutdown};
use serde_json::{json, Value};

fn output(dir: &std::path::Path, settings: &str) -> Elasticsearch {
    es_output(dir, settings)
}

fn event(i: usize, time: &str, id_prefix: &str) -> Event {
    let mut e = Event::from_message(format!("event {i}"));
    e.fields.insert("@timestamp".into(), json!(time));
    e.fields.insert("n".into(), json!(i));
    e.metadata
        .insert("_id".into(), json!(format!("{id_prefix}-{i}")));
    e
}

/// Runs the output over `batches` until its input closes; asserts that every
/// batch was acknowledged as delivered; returns the counters.
async fn index(es: Elasticsearch, batches: Vec<Vec<Event>>, dead_letters: DeadLetters) -> Snapshot {
    let counters = Arc::clone(&es.counters);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("test"),
        shutdown: Shutdown::default(),
        state_dir: std::env::temp_dir(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let task = tokio::spawn(es.run(rx, cx, dead_letters));
    deliver_all(tx, batches, task, Duration::from_secs(240)).await;
    counters.snapshot()
}

/// The records of a dead-letter file.
fn dead_letter_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn chunks(events: Vec<Event>, size: usize) -> Vec<Vec<Event>> {
    let mut out = Vec::new();
    let mut it = events.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn events_land_once_each_in_the_index_of_their_own_utc_day_even_when_replayed() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("day");
    let es = Es::new(&svc.es);
    let events: Vec<Event> = (0..1000)
        .map(|i| {
            let time = if i % 2 == 0 {
                "2026-11-25T23:59:59.999Z"
            } else {
                "2026-11-26T00:00:00.000Z"
            };
            event(i, time, &prefix)
        })
        .collect();
    let settings = format!(
        "hosts = \"{}\"\nindex = \"{prefix}-%{{+YYYY.MM.dd}}\"\nbatch_events = 64\nmax_in_flight = 3\ncompression = true\nbatch_wait = \"50ms\"",
        svc.es
    );
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let first = index(
        output(dir.path(), &settings),
        chunks(events.clone(), 37),
        dl.clone(),
    )
    .await;
    assert_eq!(first.indexed, 1000);
    assert_eq!(es.count(&format!("{prefix}-2026.11.25")).await, 500);
    assert_eq!(es.count(&format!("{prefix}-2026.11.26")).await, 500);
    assert_eq!(
        es.indices(&format!("{prefix}-*")).await,
        [
            format!("{prefix}-2026.11.25"),
            format!("{prefix}-2026.11.26")
        ]
    );

    // The same events again (a Kafka range consumed twice): no duplicate.
    let again = index(output(dir.path(), &settings), chunks(events, 100), dl).await;
    assert_eq!(again.indexed, 0);
    assert_eq!(
        again.already_indexed, 1000,
        "every replayed event counted as a 409"
    );
    assert_eq!(es.count(&format!("{prefix}-*")).await, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_conflict_goes_to_the_dead_letter_file_and_can_be_replayed_elsewhere() {
    let Some(svc) = services() else { return };
    mapping_conflict(&svc.es).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_conflict_in_elasticsearch_goes_to_the_dead_letter_file_and_replays() {
    let Some(url) = elasticsearch() else { return };
    mapping_conflict(&url).await;
}

/// A real mapping refuses one event of 50 (`mapper_parsing_exception`): it
/// goes to the dead-letter file, and replays from there into another index.
async fn mapping_conflict(url: &str) {
    let dir = temp_dir();
    let prefix = unique("conflict");
    let es = Es::new(url);
    let index_name = format!("{prefix}-2026.11.25");
    let (status, body) = es
        .put(
            &index_name,
            json!({"mappings": {"properties": {"http": {"properties": {"response": {"properties": {"status_code": {"type": "long"}}}}}}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut events: Vec<Event> = (0..50)
        .map(|i| {
            let mut e = event(i, "2026-11-25T12:00:00.000Z", &prefix);
            e.fields
                .insert("http".into(), json!({"response": {"status_code": 200}}));
            e
        })
        .collect();
    events[17].fields.insert(
        "http".into(),
        json!({"response": {"status_code": "not-a-number"}}),
    );
    let dl_path = dir.path().join("dead-letter.ndjson");
    let dl = DeadLetters::new("t", dl_path.clone(), 1 << 20, 5);
    let settings =
        format!("hosts = \"{url}\"\nindex = \"{prefix}-%{{+YYYY.MM.dd}}\"\nbatch_wait = \"50ms\"",);
    let counts = index(output(dir.path(), &settings), vec![events], dl).await;
    assert_eq!((counts.indexed, counts.dead_lettered), (49, 1));
    assert_eq!(es.count(&index_name).await, 49);

    let records = dead_letter_records(&dl_path);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["status"], 400);
    assert_eq!(r["index"], index_name.as_str());
    assert_eq!(r["error_type"], "mapper_parsing_exception", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("status_code"), "{r}");
    assert_eq!(r["event"]["n"], 17);
    assert_eq!(
        r["event"]["@metadata"]["_id"],
        format!("{prefix}-17").as_str()
    );

    // Once the mapping is "fixed" (here: another index), the dead_letter
    // input replays the event; `logpipe run` stops when the file is done.
    let fixed = format!("{prefix}-fixed");
    let pipeline = dir.path().join("replay.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[[input]]\ntype = \"dead_letter\"\npath = \"{}\"\ntags = [\"_replayed\"]\n[[output]]\ntype = \"elasticsearch\"\nhosts = \"{}\"\nindex = \"{fixed}\"\nbatch_wait = \"50ms\"\n",
            dl_path.display(),
            url
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &[], std::process::Stdio::null());
    let status = wait_exit(&mut child, Duration::from_secs(120));
    assert!(status.success(), "replay exits 0 when done: {status}");
    let hits = es.search_all(&fixed, 10).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0]["_id"],
        format!("{prefix}-17").as_str(),
        "the origin id is kept"
    );
    assert_eq!(hits[0]["_source"]["tags"], json!(["_replayed"]));
    assert!(hits[0]["_source"].get("@metadata").is_none());
}

/// A request refused for its content (413 over `http.max_content_length`,
/// 400) is sent in halves: everything that fits is indexed, and only an
/// item that is too large on its own goes to the dead-letter file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_for_their_size_or_content_are_split_down_to_the_offending_item() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("split");
    let es = Es::new(&svc.es);
    let proxy = Proxy::start(&svc.es).await;
    proxy
        .max_body
        .store(20_000, std::sync::atomic::Ordering::Relaxed);
    proxy.inject([Fault::Status(400)]);
    let mut events: Vec<Event> = (0..400)
        .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
        .collect();
    events[123]
        .fields
        .insert("blob".into(), json!("x".repeat(30_000)));
    let dl_path = dir.path().join("dl.ndjson");
    let dl = DeadLetters::new("t", dl_path.clone(), 1 << 20, 5);
    let settings = format!(
        "hosts = \"{}\"\nindex = \"{prefix}\"\nbatch_events = 400\nbatch_wait = \"50ms\"\ncompression = false",
        proxy.url
    );
    let counts = index(output(dir.path(), &settings), vec![events], dl).await;
    assert_eq!(proxy.faults_left(), 0, "the 400 was played");
    assert_eq!(
        (counts.indexed, counts.dead_lettered),
        (399, 1),
        "{counts:?}"
    );
    assert_eq!(es.count(&prefix).await, 399);
    let records = dead_letter_records(&dl_path);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], 413);
    assert_eq!(records[0]["error_type"], "http_413");
    assert_eq!(records[0]["event"]["n"], 123);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_is_indexed_exactly_once_through_a_faulty_proxy() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("faults");
    let es = Es::new(&svc.es);
    let proxy = Proxy::start(&svc.es).await;
    proxy.inject([
        Fault::Status(429),
        Fault::RejectItems(3),
        Fault::Status(503),
        Fault::DropMidBody,
        Fault::Slow(Duration::from_secs(3)),
        Fault::DropAfterForward,
        Fault::RejectItems(2),
        Fault::Status(504),
        Fault::Slow(Duration::from_millis(300)),
        Fault::Status(429),
    ]);
    let events: Vec<Event> = (0..3000)
        .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
        .collect();
    let settings = format!(
        "hosts = \"{}\"\nindex = \"{prefix}\"\nbatch_events = 250\nmax_in_flight = 2\ntimeout = \"1s\"\nprobe_interval = \"100ms\"\nbatch_wait = \"50ms\"\ncompression = true",
        proxy.url
    );
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let counts = index(output(dir.path(), &settings), chunks(events, 50), dl).await;
    assert_eq!(proxy.faults_left(), 0, "every fault was played");
    assert_eq!(counts.dead_lettered, 0);
    assert_eq!(counts.indexed + counts.already_indexed, 3000);
    assert!(
        counts.retried_items > 0 && counts.failed_requests >= 6,
        "{counts:?}"
    );
    assert_eq!(es.count(&prefix).await, 3000, "exactly once");
    let hits = es.search_all(&prefix, 5000).await;
    let mut ns: Vec<u64> = hits
        .iter()
        .map(|h| h["_source"]["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len(), 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_host_takes_over_and_the_first_is_used_again_once_back() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("failover");
    let es = Es::new(&svc.es);
    let (a, b) = (Proxy::start(&svc.es).await, Proxy::start(&svc.es).await);
    a.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let settings = format!(
        "hosts = [\"{}\", \"{}\"]\nindex = \"{prefix}\"\nbatch_events = 10\nbatch_wait = \"20ms\"\nprobe_interval = \"100ms\"",
        a.url, b.url
    );
    let out = output(dir.path(), &settings);
    let counters = Arc::clone(&out.counters);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("test"),
        shutdown: Shutdown::default(),
        state_dir: dir.path().to_path_buf(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let task = tokio::spawn(out.run(rx, cx, dl));
    let mut sent = 0;
    let mut send = |n: usize| {
        let batch: Vec<Event> = (sent..sent + n)
            .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
            .collect();
        sent += n;
        Batch::new(batch, logpipe::AckToken::untracked())
    };
    // A is down: everything goes through B.
    for _ in 0..10 {
        tx.send(send(10)).await.unwrap();
    }
    eventually(
        Duration::from_secs(60),
        "100 documents through B",
        || async { (counters.snapshot().indexed >= 100).then_some(()) },
    )
    .await;
    assert_eq!(a.forwarded.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(b.forwarded.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // A is back: the probe finds it and it gets requests again.
    a.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.forwarded.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "A never used again");
        tx.send(send(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tx);
    task.await.unwrap().unwrap();
    assert_eq!(es.count(&prefix).await, sent as u64);
}

/// A host marked down comes back although it answers only after 20 s, four
/// times `probe_interval` (its default 5 s): the probe waits as long as a
/// request may (`timeout`), and while every host is down a request is sent
/// anyway once per `probe_interval`. Before, the probe gave up after
/// `probe_interval` and delivery stopped for good.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_answers_slowly_is_admitted_again_and_every_event_is_indexed_once() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("slow-host");
    let es = Es::new(&svc.es);
    let proxy = Proxy::start(&svc.es).await;
    let delay: u64 = std::env::var("LOGPIPE_TEST_SLOW_ES_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    // Down at first, so that the first request marks the host down.
    proxy.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let settings = format!(
        "hosts = \"{}\"\nindex = \"{prefix}\"\nbatch_events = 300\nmax_in_flight = 2\nbatch_wait = \"50ms\"\ntimeout = \"{}s\"",
        proxy.url,
        delay + 15
    );
    let out = output(dir.path(), &settings);
    assert_eq!(out.probe_interval, Duration::from_secs(5), "the default");
    assert_eq!(out.probe_timeout, out.timeout, "probes wait like requests");
    let counters = Arc::clone(&out.counters);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("test"),
        shutdown: Shutdown::default(),
        state_dir: dir.path().to_path_buf(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let task = tokio::spawn(out.run(rx, cx, dl));
    let mut tracker = AckTracker::new();
    let lane = tracker.open_lane();
    const WRITTEN: usize = 600;
    let events: Vec<Event> = (0..WRITTEN)
        .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
        .collect();
    let batches = chunks(events, 50);
    let n = batches.len();
    let feed = tokio::spawn(async move {
        for (i, events) in batches.into_iter().enumerate() {
            tx.send(Batch::new(events, tracker.track(lane, i, 1)))
                .await
                .unwrap();
        }
        tracker
    });
    eventually(
        Duration::from_secs(30),
        "the host to be marked down",
        || async { (counters.snapshot().failed_requests >= 1).then_some(()) },
    )
    .await;
    proxy.set_delay(Duration::from_secs(delay));
    proxy.down.store(false, std::sync::atomic::Ordering::SeqCst);

    let mut tracker = tokio::time::timeout(Duration::from_secs(6 * delay + 60), feed)
        .await
        .expect("every batch taken: delivery resumed")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(6 * delay + 60), task)
        .await
        .expect("the output finishes: delivery resumed")
        .unwrap()
        .unwrap();
    tracker.drain();
    assert!(!tracker.has_failed(), "a batch failed");
    assert_eq!(tracker.in_flight(), 0, "every batch acknowledged");
    assert_eq!(tracker.take_progress(), vec![(lane, n - 1)]);

    let counts = counters.snapshot();
    let hits = es.search_all(&prefix, 2 * WRITTEN).await;
    let mut ns: Vec<u64> = hits
        .iter()
        .map(|h| h["_source"]["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    let indexed = es.count(&prefix).await as usize;
    ns.dedup();
    let distinct = ns.len();
    let delayed = proxy.delayed.lock().unwrap().len();
    eprintln!(
        "slow host ({delay} s per answer): written {WRITTEN}, indexed {indexed}, distinct {distinct}, duplicated {}, lost {}; output counters {counts:?}; {delayed} answers delayed",
        indexed - distinct,
        WRITTEN - distinct
    );
    assert!(delayed >= 1, "answers were delayed");
    assert!(
        proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "requests reached the server through the slow host"
    );
    assert_eq!(counts.dead_lettered, 0);
    assert_eq!(counts.indexed + counts.already_indexed, WRITTEN as u64);
    assert_eq!(indexed, WRITTEN, "every event indexed once");
    assert_eq!(distinct, WRITTEN, "none lost, none duplicated");
}

/// Mutual TLS: the proxy in front of the server requires a client
/// certificate; logpipe presents `client_cert` / `client_key`. Without
/// them the handshake fails and nothing gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("mtls");
    let (acceptor, ca_pem, cert_pem, key_pem) = common::proxy::mtls_acceptor();
    let proxy = Proxy::start_with(&svc.es, Some(acceptor), None).await;
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("client.pem"),
        dir.path().join("client.key"),
    );
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let events = |n: usize| {
        (0..n)
            .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
            .collect::<Vec<_>>()
    };

    // Without the client certificate: refused at the handshake.
    let base = format!(
        "hosts = \"{}\"\nindex = \"{prefix}\"\nca = \"{}\"\nbatch_wait = \"50ms\"",
        proxy.url,
        ca.display()
    );
    let without = format!("{base}\ntimeout = \"1s\"");
    let es_output = output(dir.path(), &without);
    let counters = Arc::clone(&es_output.counters);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("mtls"),
        shutdown: Shutdown::default(),
        state_dir: std::env::temp_dir(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let stop = cx.shutdown.clone();
    let dl = DeadLetters::new("t", dir.path().join("dl0.ndjson"), 1 << 20, 5);
    let task = tokio::spawn(es_output.run(rx, cx, dl));
    let mut tracker = AckTracker::new();
    let lane = tracker.open_lane();
    tx.send(Batch::new(events(10), tracker.track(lane, 0, 10)))
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "failed requests", || async {
        (counters.snapshot().failed_requests >= 1).then_some(())
    })
    .await;
    assert_eq!(proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst), 0);
    stop.stop.cancel();
    stop.abort.cancel();
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;

    // With it: indexed. With the default timeout: the first bulk request
    // into a new index on a fresh OpenSearch can take longer than the 1 s
    // above, and its retry would then find every document already there.
    let with = format!(
        "{base}\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        cert.display(),
        key.display()
    );
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let counts = index(output(dir.path(), &with), vec![events(100)], dl).await;
    assert_eq!(counts.indexed, 100, "{counts:?}");
    assert!(proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(Es::new(&svc.es).count(&prefix).await, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_basic_auth_work_and_the_password_never_shows() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let prefix = unique("tls");
    let password = format!("pw-{:016x}", fastrand::u64(..));
    let expected = format!(
        "Basic {}",
        base64(format!("logpipe_writer:{password}").as_bytes())
    );
    let (acceptor, ca_pem) = common::proxy::tls_acceptor();
    let proxy = Proxy::start_with(&svc.es, Some(acceptor), Some(expected)).await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..200).map(|i| format!("line {i}")));
    let pipeline = dir.path().join("tls.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[[input]]
type = "file"
paths = ["{log}"]
exit_after_eof = true

[[output]]
type = "elasticsearch"
hosts = "{url}"
index = "{prefix}"
user = "logpipe_writer"
password = "${{ES_TEST_PASSWORD}}"
ca = "{ca}"
batch_wait = "50ms"
"#,
            log = log.display(),
            url = proxy.url,
            ca = ca.display(),
        ),
    )
    .unwrap();
    let check = logpipe()
        .arg("check")
        .arg(&pipeline)
        .env("ES_TEST_PASSWORD", &password)
        .output()
        .unwrap();
    assert!(check.status.success());
    let check_text = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!check_text.contains(&password), "{check_text}");

    let state = dir.path().join("state");
    let log_file = state.with_extension("log");
    let mut child = logpipe()
        .arg("run")
        .arg(&pipeline)
        .arg("--state-dir")
        .arg(&state)
        .env("ES_TEST_PASSWORD", &password)
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log_file).unwrap())
        .spawn()
        .unwrap();
    let es = Es::new(&svc.es);
    eventually(
        Duration::from_secs(120),
        "200 documents over TLS",
        || async { (es.count(&prefix).await >= 200).then_some(()) },
    )
    .await;
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert_eq!(es.count(&prefix).await, 200);
    let logs = std::fs::read_to_string(&log_file).unwrap();
    assert!(!logs.is_empty());
    assert!(
        !logs.contains(&password),
        "the password leaked into the logs"
    );

    // A wrong password is refused, and neither password shows in the logs.
    let wrong = dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(&wrong, text.replace(&prefix, &format!("{prefix}-wrong"))).unwrap();
    let wrong_log = dir.path().join("wrong.log");
    let mut child = logpipe()
        .arg("run")
        .arg(&wrong)
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .env("ES_TEST_PASSWORD", "wrong-secret-value")
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&wrong_log).unwrap())
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "a refused request in the log",
        || async {
            let text = std::fs::read_to_string(&wrong_log).unwrap_or_default();
            text.contains("401").then_some(())
        },
    )
    .await;
    sigterm(&child);
    let _ = wait_exit(&mut child, Duration::from_secs(60));
    let logs = std::fs::read_to_string(&wrong_log).unwrap();
    assert!(!logs.contains("wrong-secret-value"), "{logs}");
    assert_eq!(es.count(&format!("{prefix}-wrong")).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_installs_a_template_that_types_later_documents() {
    let Some(svc) = services() else { return };
    // OpenSearch 2.19 has the wildcard type
    setup_template(&svc.es, "wildcard").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_installs_a_template_that_elasticsearch_applies_and_enforces() {
    let Some(url) = elasticsearch() else { return };
    // the OSS build of the test command has no wildcard (X-Pack's)
    setup_template(&url, "keyword").await;
}

/// A pipeline for `logpipe setup` only: daily indices `prefix-YYYY.MM.dd`
/// on `url`, its file input never read.
fn setup_pipeline(url: &str, prefix: &str, path: std::path::PathBuf) -> std::path::PathBuf {
    PipelineToml::unnamed()
        .file_input("/nonexistent")
        .elasticsearch_output(url, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .write_to(path)
}

/// `logpipe setup` (twice) installs the template; a later document with
/// strings everywhere gets the ECS types, and one that breaks them is
/// refused by the server.
async fn setup_template(url: &str, url_type: &str) {
    let dir = temp_dir();
    let prefix = unique("setup");
    let pipeline = setup_pipeline(url, &prefix, dir.path().join("setup.toml"));
    for _ in 0..2 {
        let out = logpipe().arg("setup").arg(&pipeline).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("`{prefix}-*`")), "{stdout}");
        assert!(stdout.contains("installed template"), "{stdout}");
    }
    let es = Es::new(url);
    let (status, body) = es.get(&format!("_index_template/logpipe-{prefix}")).await;
    assert_eq!(status, 200, "{body}");

    // A later document, with strings everywhere, gets the ECS types.
    let index = format!("{prefix}-2026.11.25");
    let (status, body) = es
        .post(
            &format!("{index}/_doc"),
            json!({"@timestamp": "2026-11-25T10:00:00Z", "source": {"ip": "192.0.2.7"},
                   "http": {"response": {"status_code": "404", "body": {"bytes": "512"}}},
                   "url": {"original": "/a?b=c"}, "message": "GET /a"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let (_, mapping) = es.get(&format!("{index}/_mapping")).await;
    let props = &mapping[&index]["mappings"]["properties"];
    assert_eq!(props["@timestamp"]["type"], "date");
    assert_eq!(props["source"]["properties"]["ip"]["type"], "ip");
    assert_eq!(
        props["http"]["properties"]["response"]["properties"]["status_code"]["type"],
        "long"
    );
    assert_eq!(
        props["http"]["properties"]["response"]["properties"]["body"]["properties"]["bytes"]
            ["type"],
        "long"
    );
    // wildcard where the server has the type (OpenSearch 2.15+, Elasticsearch 7.9+ but OSS)
    assert_eq!(props["url"]["properties"]["original"]["type"], url_type);
    assert_eq!(props["message"]["type"], "text");

    // and the server enforces it: a source.ip that is no IP is refused
    let (status, body) = es
        .post(
            &format!("{index}/_doc"),
            json!({"@timestamp": "2026-11-25T10:00:00Z", "source": {"ip": "not-an-ip"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "mapper_parsing_exception", "{body}");
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            out.push(if k <= c.len() {
                A[((n >> (18 - 6 * k)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_or_a_password_file_authenticates_requests() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let es = Es::new(&svc.es);
    let password_file = dir.path().join("es-password");
    std::fs::write(&password_file, "from-a-file\n").unwrap();
    let cases = [
        (
            "ApiKey aWQ6a2V5".to_owned(),
            "api_key = \"aWQ6a2V5\"".to_owned(),
        ),
        (
            format!("Basic {}", base64(b"writer:from-a-file")),
            format!(
                "user = \"writer\"\npassword_file = \"{}\"",
                password_file.display()
            ),
        ),
    ];
    for (header, auth) in cases {
        let prefix = unique("auth");
        let proxy = Proxy::start_with(&svc.es, None, Some(header.clone())).await;
        let settings = format!(
            "hosts = \"{}\"\nindex = \"{prefix}\"\nbatch_wait = \"20ms\"\n{auth}",
            proxy.url
        );
        let events = (0..10)
            .map(|i| event(i, "2026-11-25T08:00:00.000Z", &prefix))
            .collect();
        let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
        let counts = index(output(dir.path(), &settings), vec![events], dl).await;
        assert_eq!(counts.indexed, 10, "{header}");
        assert_eq!(es.count(&prefix).await, 10);
    }
}

/// The template API follows the version `GET /` reports: the legacy
/// `_template` before Elasticsearch 7.8, `_index_template` from 7.8 and on
/// OpenSearch. A proxy answers `GET /` as those servers would; the real
/// server behind it takes both APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_uses_the_template_api_of_the_version_it_finds() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let es = Es::new(&svc.es);
    let cases = [
        (
            json!({"version": {"number": "7.7.1"}}),
            "_template",
            "keyword",
        ),
        (
            json!({"version": {"number": "7.17.9"}}),
            "_index_template",
            "wildcard",
        ),
        (
            json!({"version": {"number": "2.11.0", "distribution": "opensearch"}}),
            "_index_template",
            "keyword",
        ),
    ];
    for (root, api, url_type) in cases {
        let proxy = Proxy::start(&svc.es).await;
        *proxy.root.lock().unwrap() = Some(root.clone());
        let prefix = unique("versions");
        let pipeline = setup_pipeline(
            &proxy.url,
            &prefix,
            dir.path().join(format!("{prefix}.toml")),
        );
        let out = logpipe().arg("setup").arg(&pipeline).output().unwrap();
        assert!(
            out.status.success(),
            "{root}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let put = format!("PUT /{api}/logpipe-{prefix} ");
        let heads = proxy.heads.lock().unwrap().clone();
        assert!(
            heads.iter().any(|h| h.starts_with(&put)),
            "{root}: no {put} in {heads:?}"
        );
        let (status, body) = es.get(&format!("{api}/logpipe-{prefix}")).await;
        assert_eq!(status, 200, "{body}");
        // url.original is `wildcard` only where the server has that type.
        let text = body.to_string();
        assert_eq!(
            text.contains("wildcard"),
            url_type == "wildcard",
            "{root}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preset_documents_get_the_types_kibana_needs_on_opensearch() {
    let Some(svc) = services() else { return };
    preset_documents_get_their_types(&svc.es, "wildcard").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preset_documents_get_the_types_kibana_needs_on_elasticsearch() {
    let Some(url) = elasticsearch() else { return };
    preset_documents_get_their_types(&url, "keyword").await;
}

/// The document the shipped pipeline `preset` makes of `line`, as
/// `logpipe test` prints it.
fn preset_document(preset: &str, line: &str, dir: &Path) -> serde_json::Value {
    let input = dir.join(format!("{preset}.input"));
    std::fs::write(&input, format!("{line}\n")).unwrap();
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines")
        .join(format!("{preset}.toml"));
    let out = succeeds(
        logpipe()
            .arg("test")
            .arg(&pipeline)
            .arg("--input")
            .arg(&input),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().expect("one event")).unwrap()
}

/// Every leaf of `doc` with its dotted path.
fn leaves(prefix: &str, doc: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match doc {
        serde_json::Value::Object(map) if !(map.contains_key("lat") && map.contains_key("lon")) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        serde_json::Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            if let Some(first) = items.first() {
                out.push((prefix.to_owned(), first.clone()));
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// The mapped type of dotted `path` in a `_mapping` answer's properties.
fn mapped_type(props: &serde_json::Value, path: &str) -> String {
    let mut node = props;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        node = &node[*part];
        if i + 1 < parts.len() {
            node = &node["properties"];
        }
    }
    node["type"].as_str().unwrap_or("none").to_owned()
}

/// Documents of both shipped presets, indexed after `logpipe setup`, get
/// the ECS types: no string becomes `text` + `.keyword` by dynamic mapping
/// (only `message` and `error.message` are text), numbers are `long`, the
/// geoip location is a `geo_point` (Kibana's maps need one).
async fn preset_documents_get_their_types(url: &str, url_type: &str) {
    let dir = temp_dir();
    let prefix = unique("ecs");
    let pipeline = setup_pipeline(url, &prefix, dir.path().join("setup.toml"));
    succeeds(logpipe().arg("setup").arg(&pipeline));
    let mut access = preset_document(
        "httpd-access",
        r#"203.0.113.9 - frank [25/Nov/2026:10:00:00 +0000] "GET /a/b?c=d HTTP/1.1" 200 512 "http://example.com/start" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0""#,
        dir.path(),
    );
    // What the geoip filter adds (it needs a MaxMind database, which the
    // test command has none of; its output shape is unit-tested).
    access["source"]["geo"] = json!({"location": {"lat": 51.5142, "lon": -0.0931},
                                     "country_iso_code": "GB", "city_name": "London"});
    access["source"]["as"] = json!({"number": 20712, "organization": {"name": "Andrews & Arnold"}});
    let error = preset_document(
        "httpd-error",
        "[Wed Nov 25 10:00:00.123456 2026] [core:error] [pid 35708:tid 4328636416] [client 192.0.2.7:5566] AH00128: File does not exist: /x",
        dir.path(),
    );
    let es = Es::new(url);
    let index = format!("{prefix}-2026.11.25");
    for doc in [&access, &error] {
        let (status, body) = es.post(&format!("{index}/_doc"), doc.clone()).await;
        assert!(status == 200 || status == 201, "{body}\n{doc}");
    }
    let (_, mapping) = es.get(&format!("{index}/_mapping")).await;
    let props = &mapping[&index]["mappings"]["properties"];
    let expected = [
        ("@timestamp", "date"),
        ("source.ip", "ip"),
        ("source.port", "long"),
        ("source.geo.location", "geo_point"),
        ("source.as.number", "long"),
        ("http.response.status_code", "long"),
        ("http.response.body.bytes", "long"),
        ("url.original", url_type),
        ("log.offset", "long"),
        ("process.pid", "long"),
        ("process.thread.id", "long"),
        ("message", "text"),
    ];
    for (path, want) in expected {
        assert_eq!(mapped_type(props, path), want, "{path} in {mapping}");
    }
    let mut all = Vec::new();
    leaves("", &access, &mut all);
    leaves("", &error, &mut all);
    assert!(all.len() > 30, "{all:?}");
    for (path, value) in all {
        let got = mapped_type(props, &path);
        let fine: &[&str] = match value {
            serde_json::Value::String(_) if path == "message" || path == "error.message" => {
                &["text"]
            }
            serde_json::Value::String(_) => &["keyword", "wildcard", "ip", "date"],
            serde_json::Value::Number(_) => &["long"],
            serde_json::Value::Bool(_) => &["boolean"],
            serde_json::Value::Object(_) => &["geo_point"],
            _ => continue,
        };
        assert!(
            fine.contains(&got.as_str()),
            "{path} ({value}) is mapped as {got}, not one of {fine:?}"
        );
    }
}

/// The output's Prometheus counters are published every second; as it ends
/// it publishes them once more, so what `/metrics` says of a finished output
/// is its last word, not a second old (issue #16: "counters lag by a second
/// at exit"). The run below takes well under a second, so without that
/// last publication the indexed count reads 0.
#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_of_an_output_that_ended_hold_its_last_counts() {
    let Some(svc) = services() else { return };
    let handle = logpipe::monitor::install().expect("a metrics recorder");
    let dir = temp_dir();
    let prefix = unique("last-counts");
    let pipeline = unique("last-counts");
    let settings = format!(
        "hosts = \"{}\"\nindex = \"{prefix}\"\nbatch_events = 500\nbatch_wait = \"20ms\"",
        svc.es
    );
    let es = output(dir.path(), &settings);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from(pipeline.as_str()),
        shutdown: Shutdown::default(),
        state_dir: std::env::temp_dir(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let task = tokio::spawn(es.run(rx, cx, dl));
    let events: Vec<Event> = (0..300)
        .map(|i| event(i, "2026-11-25T10:00:00.000Z", &prefix))
        .collect();
    deliver_all(tx, chunks(events, 100), task, Duration::from_secs(60)).await;

    let text = handle.render();
    let labels = [
        &*format!("pipeline=\"{pipeline}\""),
        "stage=\"output.elasticsearch\"",
    ];
    let indexed = metric_sample(
        &text,
        "logpipe_es_items_total",
        &[labels[0], labels[1], "result=\"indexed\""],
    );
    assert_eq!(indexed, Some(300.0), "indexed, read at once after the end");
    let out = metric_sample(&text, "logpipe_events_out_total", &labels);
    assert_eq!(out, Some(300.0), "events out, read at once after the end");
}
