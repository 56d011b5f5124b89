//! A producer that librdkafka declares fatally failed (here: a sequence
//! desynchronization, `OutOfOrderSequenceNumber` on the first request, which
//! the test broker cannot be made to answer) is replaced by a new one and
//! its messages are sent again. Runs against librdkafka's own in-process
//! mock cluster, the one broker that injects that error on request.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{deliver_all, PipelineToml};
use logpipe::dead_letter::DeadLetters;
use logpipe::event::Event;
use logpipe::kafka::producer::Producers;
use logpipe::kafka::Hop;
use logpipe::shutdown::{RunCx, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

const OUT_OF_ORDER: RDKafkaRespErr = RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;

/// The hop of a pipeline file shipping to `topic` on `brokers`.
fn hop(dir: &std::path::Path, brokers: &str, topic: &str) -> Hop {
    let path = PipelineToml::unnamed()
        .file_input("/nonexistent")
        .kafka(brokers, topic)
        .stdout_output()
        .write_to(dir.join("fatal.toml"));
    let loaded = logpipe::pipeline::load(&[path], &|_: &str| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.pipelines[0].hop.clone().unwrap()
}

/// Every record of partition 0 of `topic`: origin id → times read.
fn read_topic(brokers: &str, topic: &str, want: usize) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "fatal-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Read until `want` distinct ids, then a little more for duplicates.
    let mut quiet_until = None;
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
            let id = v["@metadata"]["_id"].as_str().unwrap().to_owned();
            *ids.entry(id).or_default() += 1;
        }
        if ids.len() >= want {
            let until = *quiet_until
                .get_or_insert_with(|| std::time::Instant::now() + Duration::from_secs(1));
            if std::time::Instant::now() > until {
                break;
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fatally_failed_producer_is_replaced_by_a_new_one_that_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("fatal", 1, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let producers =
        Producers::new(&hop(dir.path(), &brokers, "fatal"), Arc::from("fatal")).unwrap();

    mock.request_errors(RDKafkaApiKey::Produce, &[OUT_OF_ORDER]);
    let (generation, producer) = producers.current();
    let record = FutureRecord::<str, [u8]>::to("fatal").payload(b"{}");
    let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(30), delivery)
        .await
        .expect("a delivery report")
        .unwrap();
    assert!(failed.is_err(), "the first request fails");
    let (code, reason) = producer.client().fatal_error().expect("a fatal error");
    eprintln!("fatal error: {code:?}: {reason}");
    assert!(
        producer
            .send_result(FutureRecord::<str, [u8]>::to("fatal").payload(b"{}"))
            .is_err(),
        "a fatally failed producer takes nothing more"
    );
    drop(producer);

    assert!(producers.replace_if_fatal(generation), "replaced");
    assert!(
        producers.replace_if_fatal(generation),
        "once: a newer one is there"
    );
    let (next, producer) = producers.current();
    assert_eq!(next, generation + 1);
    assert!(producer.client().fatal_error().is_none());
    let record = FutureRecord::<str, [u8]>::to("fatal").payload(b"{}");
    let delivered = producer.send_result(record).map_err(|(e, _)| e).unwrap();
    tokio::time::timeout(Duration::from_secs(30), delivered)
        .await
        .expect("a delivery report")
        .unwrap()
        .expect("the new producer delivers");
}

/// The whole output: batches on their way when the producer fails fatally
/// are all acknowledged, every event reaches the topic (duplicates, at this
/// hop only, are counted).
#[tokio::test(flavor = "multi_thread")]
async fn every_batch_is_delivered_and_acknowledged_across_a_fatal_producer_error() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("fatal-run", 1, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let hop = hop(dir.path(), &brokers, "fatal-run");
    mock.request_errors(RDKafkaApiKey::Produce, &[OUT_OF_ORDER]);

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cx = RunCx {
        pipeline: Arc::from("fatal-run"),
        shutdown: Shutdown::default(),
        state_dir: dir.path().to_path_buf(),
        books: logpipe::accounting::Books::detached("test"),
    };
    let dl = DeadLetters::new("t", dir.path().join("dl.ndjson"), 1 << 20, 5);
    let task = tokio::spawn(logpipe::output::kafka::run(hop, rx, cx, dl));
    const BATCHES: usize = 5;
    const PER_BATCH: usize = 20;
    let batches: Vec<Vec<Event>> = (0..BATCHES)
        .map(|b| {
            (0..PER_BATCH)
                .map(|i| {
                    let mut e = Event::from_message(format!("line {b}-{i}"));
                    e.metadata
                        .insert("_id".into(), serde_json::json!(format!("id-{b}-{i}")));
                    e
                })
                .collect()
        })
        .collect();
    deliver_all(tx, batches, task, Duration::from_secs(60)).await;

    let written = BATCHES * PER_BATCH;
    let ids = read_topic(&brokers, "fatal-run", written);
    let duplicated: usize = ids.values().map(|n| n - 1).sum();
    let lost = (0..BATCHES)
        .flat_map(|b| (0..PER_BATCH).map(move |i| format!("id-{b}-{i}")))
        .filter(|id| !ids.contains_key(id))
        .count();
    eprintln!(
        "fatal producer error: written {written}, received {} distinct, lost {lost}, duplicated {duplicated}",
        ids.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(ids.len(), written);
}
