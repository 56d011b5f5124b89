//! Consuming the same Kafka range twice (as after an offset reset or a
//! rebalance) must not create a single duplicate document: the origin id
//! travels in the message and `create` answers 409 for it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn pipeline(
    dir: &std::path::Path,
    name: &str,
    log: &std::path::Path,
    svc: &Services,
    topic: &str,
    group: &str,
    prefix: &str,
) -> std::path::PathBuf {
    pipeline_toml(name)
        .file_input(log)
        .kafka(&svc.kafka, topic)
        .group(group)
        .elasticsearch_output(&svc.es, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .with("batch_wait = \"100ms\"")
        .write_to(dir.join(format!("{name}.toml")))
}

#[tokio::test(flavor = "multi_thread")]
async fn consuming_a_kafka_range_again_creates_no_duplicate() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("replay");
    let prefix = unique("replay-idx");
    create_topic(&svc.kafka, &topic, 2).await;
    let log = dir.path().join("access_log");
    write_lines(&log, (0..300).map(|i| format!("line {i}")));
    let es = Es::new(&svc.es);
    let pattern = format!("{prefix}-*");

    let first = pipeline(
        dir.path(),
        "first",
        &log,
        &svc,
        &topic,
        &format!("{topic}-a"),
        &prefix,
    );
    let state = dir.path().join("state-a");
    let mut child = spawn_run(&first, &state, &[], Stdio::null());
    eventually(Duration::from_secs(120), "300 documents", || async {
        (es.count(&pattern).await >= 300).then_some(())
    })
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());

    // A new consumer group reads the whole topic again from the earliest
    // offset: the same range, consumed a second time.
    let second = pipeline(
        dir.path(),
        "second",
        &log,
        &svc,
        &topic,
        &format!("{topic}-b"),
        &prefix,
    );
    let state_b = dir.path().join("state-b");
    assert_eq!(index_again(&second, &state_b).await, 300);
    assert_eq!(es.count(&pattern).await, 300, "not a single duplicate");

    // The first group's own offsets reset to the start of the topic (what
    // `kafka-consumer-groups --reset-offsets --to-earliest` does), and its
    // indexer started again: the same range a third time.
    // Its indexer is a static member: stopped, it stays in the group until
    // the session timeout, and an offset reset needs an empty group (the
    // broker refuses the commit of a non-member), as the operator's tool
    // does. Wait for that, as the operator would.
    let group_a = format!("{topic}-a");
    eventually(Duration::from_secs(60), "the group without members", || {
        let (kafka, group) = (svc.kafka.clone(), group_a.clone());
        async move {
            let d = tokio::task::spawn_blocking(move || describe_group(&kafka, &group))
                .await
                .unwrap()
                .ok()?;
            d.members.is_empty().then_some(())
        }
    })
    .await;
    reset_group_offsets(&svc.kafka, &group_a, &topic, 2);
    assert_eq!(index_again(&first, &state).await, 300);
    assert_eq!(es.count(&pattern).await, 300, "not a single duplicate");
}

/// Runs the index half of `pipeline` until 300 events were answered 409
/// (already indexed), stops it, and returns how many were.
async fn index_again(pipeline: &std::path::Path, state: &std::path::Path) -> u64 {
    let log = state.with_extension("log");
    let mut child = logpipe()
        .arg("run")
        .arg(pipeline)
        .arg("--state-dir")
        .arg(state)
        .args(["--role", "index"])
        .env("RUST_LOG", "info,logpipe::output::elasticsearch=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(120),
        "300 replayed events answered 409",
        || async { (duplicates_logged(&log) >= 300).then_some(()) },
    )
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    duplicates_logged(&log)
}

/// Commits offset 0 for every partition of `topic` in `group`, as an
/// operator's offset reset does (the group must have no member).
fn reset_group_offsets(brokers: &str, group: &str, topic: &str, partitions: i32) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut reset = TopicPartitionList::new();
    for p in 0..partitions {
        reset
            .add_partition_offset(topic, p, Offset::Offset(0))
            .unwrap();
    }
    consumer.commit(&reset, CommitMode::Sync).unwrap();
    let mut query = TopicPartitionList::new();
    for p in 0..partitions {
        query.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(query, Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        assert_eq!(element.offset(), Offset::Offset(0), "{element:?}");
    }
}
