//! Adaptive request concurrency against real servers: a node of the test's
//! own with a tiny write queue, whose real 429s cut the limit, and the
//! shared OpenSearch behind the fault proxy, whose added latency cuts it.
//! The limit is read from the daemon's `/metrics`, as an operator would;
//! the 429s are counted by the proxy, on their way from the server.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use serde_json::json;

const LIMIT: &str = "logpipe_es_concurrency_limit";
const RTT: &str = "logpipe_es_rtt_seconds";

/// `logpipe run` of one file into `hosts`, with `/metrics` sampled every
/// 20 ms from a thread of its own.
struct Daemon {
    name: String,
    log: std::path::PathBuf,
    child: std::process::Child,
    metrics: String,
    labels: Vec<String>,
    samples: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(
        dir: &Path,
        name: &str,
        lines: usize,
        hosts: &str,
        index: &str,
        settings: &str,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        write_lines(&log, line_range(name, 0, lines));
        let pipeline = pipeline_toml(name)
            .file_input(&log)
            .elasticsearch_output(hosts, index)
            .with(settings)
            .write_to(dir.join(format!("{name}.toml")));
        let metrics = metrics_address();
        let state = dir.join(format!("{name}-state"));
        let child = spawn_run(
            &pipeline,
            &state,
            &["--metrics-address", &metrics],
            std::process::Stdio::null(),
        );
        let labels = vec![
            format!("pipeline=\"{name}\""),
            "output=\"output.elasticsearch#1\"".to_owned(),
        ];
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (samples, stop, metrics, labels) = (
                Arc::clone(&samples),
                Arc::clone(&stop),
                metrics.clone(),
                labels.clone(),
            );
            std::thread::spawn(move || {
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                while !stop.load(Ordering::SeqCst) {
                    if let Some((200, text)) = http_get(&metrics, "/metrics") {
                        if let Some(v) = metric_sample(&text, LIMIT, &labels) {
                            let mut s = samples.lock().unwrap();
                            // Only moves: the series of limits it took.
                            if s.last() != Some(&v) {
                                s.push(v);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Daemon {
            name: name.to_owned(),
            log,
            child,
            metrics,
            labels,
            samples,
            stop,
            sampler: Some(sampler),
        }
    }

    /// The limits taken so far, in order (each differs from the one before).
    fn limits(&self) -> Vec<f64> {
        self.samples.lock().unwrap().clone()
    }

    fn metric(&self, name: &str, extra: &[&str]) -> Option<f64> {
        let (_, text) = http_get(&self.metrics, "/metrics")?;
        let mut labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        labels.extend(extra);
        metric_sample(&text, name, &labels)
    }

    /// Waits until its counters (published every second) count `n`
    /// events indexed.
    fn wait_indexed(&self, n: usize) {
        let mut labels: Vec<&str> = self.labels[..1].iter().map(String::as_str).collect();
        labels.push("result=\"indexed\"");
        wait_metric(
            &self.metrics,
            "logpipe_es_items_total",
            &labels,
            Duration::from_secs(30),
            |v| v >= n as f64,
        );
    }

    /// Items the output sent again (429s inside 200s, mostly).
    fn retried(&self) -> f64 {
        let pipeline = self.labels[0].as_str();
        let (_, text) = http_get(&self.metrics, "/metrics").unwrap_or_default();
        metric_sample(
            &text,
            "logpipe_es_items_total",
            &[pipeline, "result=\"retried\""],
        )
        .unwrap_or(0.0)
    }

    /// Appends `n` more lines (numbered from `from`) to its log.
    fn append(&self, from: usize, n: usize) {
        write_lines(&self.log, line_range(&self.name, from, n));
    }

    /// Stops it (SIGTERM) and the sampler; the limits it took.
    fn stop(mut self) -> Vec<f64> {
        sigterm(&self.child);
        assert!(wait_exit(&mut self.child, Duration::from_secs(60)).success());
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.sampler.take() {
            s.join().unwrap();
        }
        self.limits()
    }
}

fn line_range(name: &str, from: usize, n: usize) -> impl Iterator<Item = String> + '_ {
    (from..from + n).map(move |i| format!("{name} line {i} {}", "x".repeat(40)))
}

/// Waits until `pattern` holds `n` documents; fails if it ever holds more.
async fn wait_docs(es: &Es, pattern: &str, n: u64, timeout: Duration) {
    eventually(
        timeout,
        &format!("{n} documents in {pattern}"),
        || async move {
            let docs = es.count(pattern).await;
            assert!(docs <= n, "{docs} documents for {n} events: duplicated");
            (docs == n).then_some(())
        },
    )
    .await;
}

/// Whether the limit fell at some point and rose again after.
fn fell_and_rose(limits: &[f64]) -> bool {
    let fell = limits.windows(2).position(|w| w[1] < w[0]);
    fell.is_some_and(|f| limits[f + 1..].windows(2).any(|w| w[1] > w[0]))
}

/// A node with one write thread and a write queue of one, and an index of
/// one shard: one bulk request at a time is always taken, two at once now
/// and then get items answered 429 `rejected_execution_exception` inside a
/// 200, three at once about half of them. (With two shards or more, even
/// one request at a time has items rejected, and the limit has nowhere to
/// rise to.)
/// The adaptive limit falls at those 429s and rises again while answers are
/// clean; every event is indexed exactly once; and it causes far fewer
/// 429s than a fixed eight requests in flight on the same node.
#[tokio::test(flavor = "multi_thread")]
async fn real_429s_cut_the_limit_it_rises_again_and_every_event_is_indexed_once() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let (_node, url) = own_opensearch(dir.path(), &TINY_WRITE_QUEUE).await;
    real_429s(dir.path(), &url).await;
}

/// The same on the real Elasticsearch 7.17 (its rejections are
/// `es_rejected_execution_exception`): both families pass the same tests.
#[tokio::test(flavor = "multi_thread")]
async fn real_429s_of_elasticsearch_cut_the_limit_too() {
    let Some(_url) = elasticsearch() else { return };
    let dir = temp_dir();
    let (_node, url) = own_elasticsearch(dir.path(), &TINY_WRITE_QUEUE).await;
    real_429s(dir.path(), &url).await;
}

async fn real_429s(dir: &std::path::Path, url: &str) {
    let es = Es::new(url);
    let proxy = Proxy::start(url).await;
    let lines = 40_000;
    let mut rejected = Vec::new();
    for (name, settings) in [("adaptive", ""), ("fixed8", "request_concurrency = 8\n")] {
        let index = unique(&format!("arc-{name}"));
        let (status, body) = es
            .put(
                &index,
                json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let before = proxy.server_429s.load(Ordering::SeqCst);
        let settings = format!("{settings}batch_events = 100\nbatch_wait = \"50ms\"");
        let daemon = Daemon::start(dir, name, lines, &proxy.url, &index, &settings);
        wait_docs(&es, &index, lines as u64, Duration::from_secs(300)).await;
        daemon.wait_indexed(lines);
        let retried = daemon.retried();
        let dead = daemon
            .metric("logpipe_es_items_total", &["result=\"dead_lettered\""])
            .unwrap_or(0.0);
        let rtt = daemon.metric(RTT, &[]);
        let limits = daemon.stop();
        let n429 = proxy.server_429s.load(Ordering::SeqCst) - before;
        println!(
            "{name}: {lines} events, {n429} items answered 429, {retried} retried, rtt {rtt:?} s, limits {limits:?}"
        );
        assert_eq!(
            es.count(&index).await,
            lines as u64,
            "{name}: lost or duplicated"
        );
        assert_eq!(dead, 0.0, "{name}: nothing dead-lettered");
        assert!(
            rtt.is_some_and(|r| r > 0.0),
            "{name}: the RTT average is exported"
        );
        if name == "adaptive" {
            assert!(
                n429 > 0,
                "the tiny write queue rejected nothing of logpipe's"
            );
            assert!(retried > 0.0, "the rejected items were sent again");
            assert!(
                limits.iter().any(|l| *l >= 2.0),
                "the limit rose above one: {limits:?}"
            );
            assert!(
                fell_and_rose(&limits),
                "the limit fell at the 429s and rose again: {limits:?}"
            );
            assert!(limits.iter().all(|l| (1.0..=8.0).contains(l)), "{limits:?}");
        } else {
            assert_eq!(limits, [8.0], "a fixed limit never moves");
        }
        rejected.push(n429);
    }
    assert!(
        rejected[0] * 2 < rejected[1],
        "no 429 storm: adaptive {} vs fixed 8 {} items answered 429",
        rejected[0],
        rejected[1]
    );
}

/// The shared OpenSearch behind the fault proxy: once the limit has risen,
/// every answer is delayed more and more (a cluster whose queues fill). The
/// limit falls, without a single 429, and once the delay is gone every
/// event is indexed exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn rising_latency_cuts_the_limit_without_429s_and_nothing_is_lost_or_duplicated() {
    let Some(svc) = services() else { return };
    rising_latency(&svc.es).await;
}

/// The same against the shared Elasticsearch 7.17.
#[tokio::test(flavor = "multi_thread")]
async fn rising_latency_of_elasticsearch_cuts_the_limit_too() {
    let Some(url) = elasticsearch() else { return };
    rising_latency(&url).await;
}

async fn rising_latency(url: &str) {
    let dir = temp_dir();
    let proxy = Proxy::start(url).await;
    let es = Es::new(url);
    let index = unique("arc-latency");
    let lines = 20_000;
    let daemon = Daemon::start(
        dir.path(),
        "latency",
        lines,
        &proxy.url,
        &index,
        "batch_events = 100\nbatch_wait = \"50ms\"",
    );
    // A steady source, ~10,000 lines a second, until the limit has
    // fallen: without requests there is no answer to learn from.
    let daemon = Arc::new(daemon);
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (daemon, feeding) = (Arc::clone(&daemon), Arc::clone(&feeding));
        std::thread::spawn(move || {
            let mut written = lines;
            while feeding.load(Ordering::SeqCst) {
                daemon.append(written, 200);
                written += 200;
                std::thread::sleep(Duration::from_millis(20));
            }
            written
        })
    };
    let labels: Vec<&str> = daemon.labels.iter().map(String::as_str).collect();
    wait_metric(
        &daemon.metrics,
        LIMIT,
        &labels,
        Duration::from_secs(120),
        |v| v >= 3.0,
    );
    let before = daemon.metric(RTT, &[]);
    let delay = Duration::from_millis(500);
    proxy.set_delay(delay);
    // The highest limit since the delay began (it may still have risen
    // with answers to requests sent before).
    let mut peak = daemon.metric(LIMIT, &[]).unwrap_or(0.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let low = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = daemon.metric(LIMIT, &[]).unwrap_or(peak);
        if now < peak {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the limit did not fall from {peak} with {delay:?} added: {:?}",
            daemon.limits()
        );
        peak = peak.max(now);
    };
    let rtt = daemon.metric(RTT, &[]);
    feeding.store(false, Ordering::SeqCst);
    let lines = feeder.join().unwrap();
    proxy.set_delay(Duration::ZERO);
    wait_docs(&es, &index, lines as u64, Duration::from_secs(300)).await;
    let Ok(daemon) = Arc::try_unwrap(daemon) else {
        panic!("the feeder holds the daemon no more");
    };
    let limits = daemon.stop();
    let n429 = proxy.server_429s.load(Ordering::SeqCst);
    println!(
        "latency: peak {peak}, fell to {low} with {delay:?} added (rtt {before:?} s before, {rtt:?} s after), limits {limits:?}, 429s {n429}"
    );
    assert_eq!(n429, 0, "no 429 storm: not one");
    assert_eq!(es.count(&index).await, lines as u64, "lost or duplicated");
}
