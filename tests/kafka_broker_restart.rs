//! The ship half after its broker was killed and started again: the
//! producer recovers by itself (a new producer when the broker lost the
//! idempotent producer's state), every line arrives, and `/health` counts
//! the brokers as they are. Needs only a broker the test can start and stop
//! on a port ([`RestartableBroker`]).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use common::*;

/// One record read from the topic.
#[derive(Debug, Clone)]
struct Record {
    offset: i64,
    id: String,
    message: String,
}

/// Reads partition 0 of `topic` from its beginning on a thread, until
/// dropped.
struct Reader {
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    fn start(brokers: &str, topic: &str) -> Reader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("restart-reader"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, s) = (Arc::clone(&records), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let v: Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
                r.lock().unwrap().push(Record {
                    offset: m.offset(),
                    id: v["@metadata"]["_id"].as_str().unwrap().to_owned(),
                    message: v["message"].as_str().unwrap().to_owned(),
                });
            }
        });
        Reader {
            records,
            stop,
            thread: Some(thread),
        }
    }

    fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    fn messages(&self) -> BTreeSet<String> {
        self.records().into_iter().map(|r| r.message).collect()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `output.kafka` stage of `/health`, and whether `/health` is 200.
async fn kafka_health(base: &str) -> Option<(bool, Value)> {
    let r = reqwest::get(format!("{base}/health")).await.ok()?;
    let ok = r.status().is_success();
    let body: Value = r.json().await.ok()?;
    let stage = body["stages"]
        .as_array()?
        .iter()
        .find(|s| s["stage"] == "output.kafka")?
        .clone();
    Some((ok, stage))
}

/// Kills the daemon when the test fails before its SIGTERM, so that no
/// daemon outlives a failed test.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

async fn wait_for_messages(reader: &Reader, want: &BTreeSet<String>, what: &str) {
    eventually(Duration::from_secs(120), what, || async {
        let have = reader.messages();
        want.is_subset(&have).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_producer_recovers_by_itself_after_its_broker_restarted_and_every_line_arrives() {
    let Some(_svc) = services() else { return };
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    if std::env::var_os("LOGPIPE_TEST_KEEP").is_some() {
        std::mem::forget(tmp); // kept for inspection
    }
    let dir = dir.as_path();
    let mut broker = RestartableBroker::start(dir).await;
    let brokers = broker.address();
    let topic = unique("restart");
    ensure_topic(&brokers, &topic, 1).await;

    let log = dir.join("access_log");
    let pipeline = pipeline_toml("restart")
        .file_input(&log)
        .kafka(&brokers, &topic)
        .stdout_output()
        .write_to(dir.join("restart.toml"));
    let state = dir.join("state");
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let mut child = spawn_run(
        &pipeline,
        &state,
        &["--role", "ship", "--metrics-address", &addr],
        Stdio::null(),
    );
    let _kill = KillOnPanic(child.id());
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut write = |label: &str, n: usize| {
        let lines: Vec<String> = (0..n).map(|i| format!("{label} {i}")).collect();
        written.extend(lines.iter().cloned());
        write_lines(&log, lines.clone());
        lines.into_iter().collect::<BTreeSet<String>>()
    };

    // Shipped while the broker is up.
    let before = write("before", 300);
    let first = Reader::start(&brokers, &topic);
    wait_for_messages(&first, &before, "the lines shipped before the kill").await;
    let (ok, stage) = eventually(Duration::from_secs(30), "/health with brokers", || {
        let base = base.clone();
        async move {
            kafka_health(&base)
                .await
                .filter(|(_, s)| s["brokers"].is_object())
        }
    })
    .await;
    assert!(ok, "healthy before the kill: {stage}");
    assert_eq!(stage["brokers"], serde_json::json!({"up": 1, "total": 1}));
    // What was read before the kill is counted from this reader (a broker
    // with memory storage loses it; Kafka keeps its log).
    let read_before = first.records();
    drop(first);

    // Killed: health names the one broker, counted once.
    broker.kill();
    let during = write("during", 200);
    let reason = eventually(Duration::from_secs(60), "/health: brokers down", || {
        let base = base.clone();
        async move {
            let (ok, stage) = kafka_health(&base).await?;
            let reason = stage["reason"].as_str()?.to_owned();
            (!ok && reason.contains("brokers down")).then_some(reason)
        }
    })
    .await;
    assert_eq!(reason, format!("Kafka: 1/1 brokers down ({brokers})"));
    // A sleep, not a wait: the broker stays down a while, the outage is the scenario.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Started again on the same port, with more lines after.
    broker.restart().await;
    ensure_topic(&brokers, &topic, 1).await;
    let second = Reader::start(&brokers, &topic);
    let after = write("after", 200);
    let mut want_after: BTreeSet<String> = during.clone();
    want_after.extend(after.iter().cloned());
    wait_for_messages(
        &second,
        &want_after,
        "the lines written during and after the outage",
    )
    .await;
    // Health turns ok with the first delivery; the broker count follows
    // with the next statistics (every second).
    let (_, stage) = eventually(Duration::from_secs(60), "/health ok again, 1/1 up", || {
        let base = base.clone();
        async move {
            kafka_health(&base)
                .await
                .filter(|(ok, stage)| *ok && stage["brokers"]["up"] == 1)
        }
    })
    .await;
    assert_eq!(stage["status"], "running", "{stage}");
    assert_eq!(
        stage["brokers"],
        serde_json::json!({"up": 1, "total": 1}),
        "{stage}"
    );

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let logs = std::fs::read_to_string(state.with_extension("log")).unwrap();
    assert!(status.success(), "exit {status:?}\n{logs}");

    // Count: every line written arrived; a line read twice under one id at
    // different offsets of one broker life is a duplicate (allowed at the
    // Kafka hop: the origin id keeps Elasticsearch free of it).
    let read_after = second.records();
    drop(second);
    let mut lives: Vec<BTreeMap<String, BTreeSet<i64>>> = vec![BTreeMap::new(), BTreeMap::new()];
    for (life, records) in [&read_before, &read_after].into_iter().enumerate() {
        for r in records.iter() {
            lives[life]
                .entry(r.id.clone())
                .or_default()
                .insert(r.offset);
        }
    }
    let duplicated: usize = lives
        .iter()
        .flat_map(|l| l.values())
        .map(|offsets| offsets.len() - 1)
        .sum();
    let received: BTreeSet<String> = read_before
        .iter()
        .chain(read_after.iter())
        .map(|r| r.message.clone())
        .collect();
    let ids: BTreeSet<&str> = read_before
        .iter()
        .chain(read_after.iter())
        .map(|r| r.id.as_str())
        .collect();
    let lost = written.difference(&received).count();
    // Tansu forgets producer ids when restarted: this producer is replaced.
    // A broker that keeps them (Apache Kafka) may need no replacement.
    let replaced = logs.matches("Kafka producer replaced by a new one").count();
    eprintln!(
        "broker restart: written {}, received {} distinct lines under {} ids ({} records), lost {lost}, duplicated {duplicated}; producers replaced: {replaced}",
        written.len(),
        received.len(),
        ids.len(),
        read_before.len() + read_after.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(received, written, "nothing but the written lines");
    assert_eq!(ids.len(), written.len(), "one id per line");
}
