//! Consumer groups against the real broker: static membership (a member
//! that restarts within the session timeout gets its partitions back and
//! the group does not rebalance), distinct instance ids for processes of
//! one pipeline on one host, and the group protocol in use (KIP-848
//! `consumer` by default, `classic` when asked), as the broker's own
//! group description shows them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;

use common::*;

/// An index pipeline printing its events to stdout, with `extra` in
/// `[kafka]`.
fn pipeline(dir: &Path, name: &str, kafka: &str, topic: &str, group: &str, extra: &str) -> PathBuf {
    pipeline_toml(name)
        .kafka(kafka, topic)
        .group(group)
        .with("revoke_timeout = \"5s\"")
        .with(extra)
        .stdout_output()
        .write_to(dir.join(format!("{name}.toml")))
}

async fn produce(brokers: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for i in range {
        let body = serde_json::json!({"message": format!("m-{i:05}")}).to_string();
        let key = format!("k{i}");
        let record = FutureRecord::to(topic).key(&key).payload(&body);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in deliveries {
        d.await.unwrap().unwrap();
    }
}

/// Counts the messages a child prints, on a thread, into `seen`.
fn count_messages(
    child: &mut Child,
    seen: std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
) -> std::thread::JoinHandle<()> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(m) = v["message"].as_str() {
                *seen.lock().unwrap().entry(m.to_owned()).or_insert(0) += 1;
            }
        }
    })
}

/// The `instance=` of a log's last "Consuming." line.
fn consuming_instance(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| l.contains("Consuming."))?;
    let rest = line.split("instance=").nth(1)?;
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

fn count_lines(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

/// Kills the children still running when the test fails.
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn try_describe(brokers: &str, group: &str) -> Result<GroupDescription, String> {
    let (b, g) = (brokers.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || describe_group(&b, &g))
        .await
        .unwrap()
}

async fn describe(brokers: &str, group: &str) -> GroupDescription {
    try_describe(brokers, group)
        .await
        .unwrap_or_else(|e| panic!("describe group {group}: {e}"))
}

/// Waits until the group is stable with `n` members that hold all
/// `partitions` partitions between them, each some.
async fn settled(brokers: &str, group: &str, n: usize, partitions: usize) -> GroupDescription {
    eventually(Duration::from_secs(90), "the group to settle", || async {
        // the group does not exist until its first member joined
        let d = try_describe(brokers, group).await.ok()?;
        let held: usize = d.members.iter().map(|m| m.partitions.len()).sum();
        (d.state == "Stable"
            && d.members.len() == n
            && held == partitions
            && d.members.iter().all(|m| !m.partitions.is_empty()))
        .then_some(d)
    })
    .await
}

async fn wait_for_all(
    seen: &std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
    n: usize,
    what: &str,
) {
    eventually(Duration::from_secs(90), what, || async {
        (seen.lock().unwrap().len() >= n).then_some(())
    })
    .await;
}

/// Two indexers of one pipeline on one host: distinct instance ids (the
/// second gets a suffix). The first is stopped and started again within
/// the session timeout: it comes back under its instance id with the
/// partitions it had, the other member is never revoked nor assigned
/// anything (its member id and partitions stay as they were), and every
/// record is printed exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarting_static_member_gets_its_partitions_back_without_a_rebalance() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("static");
    let group = unique("static");
    create_topic(&svc.kafka, &topic, 4).await;
    let p = pipeline(dir.path(), "statics", &svc.kafka, &topic, &group, "");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let (a_state, b_state) = (dir.path().join("a"), dir.path().join("b"));
    let (a_log, b_log) = (a_state.with_extension("log"), b_state.with_extension("log"));

    let mut a = spawn_run(&p, &a_state, &["--role", "index"], Stdio::piped());
    let mut readers = vec![count_messages(&mut a, seen.clone())];
    let a_id = eventually(Duration::from_secs(30), "a consuming", || {
        let id = consuming_instance(&a_log);
        async move { id }
    })
    .await;
    let mut b = spawn_run(&p, &b_state, &["--role", "index"], Stdio::piped());
    readers.push(count_messages(&mut b, seen.clone()));
    let b_id = eventually(Duration::from_secs(30), "b consuming", || {
        let id = consuming_instance(&b_log);
        async move { id }
    })
    .await;
    let mut fleet = Fleet(vec![a, b]);
    assert_eq!(a_id, format!("{}-statics", hostname()));
    assert_eq!(
        b_id,
        format!("{a_id}-2"),
        "a second process gets its own id"
    );

    let before = settled(&svc.kafka, &group, 2, 4).await;
    assert_eq!(before.kind, "consumer", "{before:?}");
    let (a_before, b_before) = (
        before.instance(&a_id).unwrap().clone(),
        before.instance(&b_id).unwrap().clone(),
    );
    produce(&svc.kafka, &topic, 0..1000).await;
    wait_for_all(&seen, 1000, "the first 1000 records").await;
    // counted from here: while the group formed, b may have held more
    let b_assigned = count_lines(&b_log, "Kafka partitions assigned.");
    let b_revoked = count_lines(&b_log, "Kafka partitions revoked");

    // a: SIGTERM, and started again at once with the same state
    let mut old_a = fleet.0.remove(0);
    sigterm(&old_a);
    assert!(wait_exit(&mut old_a, Duration::from_secs(30)).success());
    produce(&svc.kafka, &topic, 1000..2000).await;
    // Away for longer than a heartbeat interval (2 s): a member that had
    // left would have its partitions given to b by now. Well inside the
    // session timeout (10 s), which keeps them for a static one.
    // A sleep, not a wait: how long a is away is the scenario.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut a = spawn_run(&p, &a_state, &["--role", "index"], Stdio::piped());
    readers.push(count_messages(&mut a, seen.clone()));
    fleet.0.push(a);
    wait_for_all(&seen, 2000, "all 2000 records").await;
    produce(&svc.kafka, &topic, 2000..2500).await;
    wait_for_all(&seen, 2500, "all 2500 records").await;

    let after = settled(&svc.kafka, &group, 2, 4).await;
    let (a_after, b_after) = (
        after.instance(&a_id).expect("a back under its id").clone(),
        after.instance(&b_id).unwrap().clone(),
    );
    assert_eq!(consuming_instance(&a_log).as_deref(), Some(a_id.as_str()));
    // nothing is printed twice: give late duplicates a moment to show
    // (a sleep, not a wait: a negative check)
    tokio::time::sleep(Duration::from_secs(2)).await;
    // b's log while it runs (stopping revokes its partitions locally)
    let b_text = std::fs::read_to_string(&b_log).unwrap();
    for mut child in std::mem::take(&mut fleet.0) {
        sigterm(&child);
        assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    }
    for r in readers {
        r.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let want: BTreeSet<String> = (0..2500).map(|i| format!("m-{i:05}")).collect();
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    let lost = want.difference(&got).count();
    let duplicated: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "static restart: written 2500, printed {} distinct ({} lines), lost {lost}, duplicated {duplicated}; \
         a {:?} -> {:?}, b {:?} -> {:?} (member {} -> {}); b assigned/revoked {}/{} times before a's restart, {}/{} after",
        got.len(),
        seen.values().sum::<usize>(),
        a_before.partitions,
        a_after.partitions,
        b_before.partitions,
        b_after.partitions,
        b_before.member_id,
        b_after.member_id,
        b_assigned,
        b_revoked,
        b_text.matches("Kafka partitions assigned.").count(),
        b_text.matches("Kafka partitions revoked").count(),
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
    assert_eq!(got, want, "nothing but the records produced");
    assert_eq!(
        b_after.member_id, b_before.member_id,
        "b stayed the same member"
    );
    assert_eq!(
        b_after.partitions, b_before.partitions,
        "b's assignment never changed"
    );
    assert_eq!(
        a_after.partitions, a_before.partitions,
        "a got its partitions back"
    );
    assert_eq!(
        b_text.matches("Kafka partitions assigned.").count(),
        b_assigned,
        "b was assigned nothing more:\n{b_text}"
    );
    assert_eq!(
        b_text.matches("Kafka partitions revoked").count(),
        b_revoked,
        "b lost nothing:\n{b_text}"
    );
}

/// The default protocol is KIP-848's (`consumer`: the broker's description
/// of the group says so, as does the log); `group_protocol = "classic"`
/// makes a classic group, with the cooperative-sticky assignor.
#[tokio::test(flavor = "multi_thread")]
async fn the_group_protocol_in_use_is_the_one_the_broker_describes() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("protocol");
    create_topic(&svc.kafka, &topic, 2).await;
    let mut kinds = Vec::new();
    let mut fleet = Fleet(Vec::new());
    for (name, extra, want) in [
        ("default", "", "consumer"),
        ("classic", "group_protocol = \"classic\"\n", "classic"),
    ] {
        let group = unique(name);
        let p = pipeline(dir.path(), name, &svc.kafka, &topic, &group, extra);
        let state = dir.path().join(name);
        fleet
            .0
            .push(spawn_run(&p, &state, &["--role", "index"], Stdio::null()));
        let d = settled(&svc.kafka, &group, 1, 2).await;
        let log = std::fs::read_to_string(state.with_extension("log")).unwrap();
        assert!(
            log.contains(&format!("protocol=\"{want}\""))
                || log.contains(&format!("protocol={want}")),
            "{log}"
        );
        kinds.push((name, d.kind.clone(), d.members[0].instance_id.clone()));
        assert_eq!(d.kind, want, "{name}: {d:?}");
        assert!(d.members[0].instance_id.is_some(), "static by default");
    }
    println!("group types as the broker describes them: {kinds:?}");
    for mut child in std::mem::take(&mut fleet.0) {
        sigterm(&child);
        assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    }
}

/// Two processes given the same `group_instance_id` on one host: the second
/// refuses to start, with an error naming the id and the group, instead of
/// fencing the first (or being fenced) and consuming nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_chosen_instance_id_in_use_on_this_host_is_a_clear_error() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("fixed");
    let group = unique("fixed");
    create_topic(&svc.kafka, &topic, 1).await;
    let p = pipeline(
        dir.path(),
        "fixed",
        &svc.kafka,
        &topic,
        &group,
        "group_instance_id = \"indexer-1\"\n",
    );
    let first = spawn_run(
        &p,
        &dir.path().join("a"),
        &["--role", "index"],
        Stdio::null(),
    );
    let mut fleet = Fleet(vec![first]);
    settled(&svc.kafka, &group, 1, 1).await;
    let mut second = spawn_run(
        &p,
        &dir.path().join("b"),
        &["--role", "index"],
        Stdio::null(),
    );
    let status = wait_exit(&mut second, Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "group_instance_id indexer-1 of consumer group {group} is in use by another logpipe process on this host"
        )),
        "{log}"
    );
    // the first is undisturbed
    let d = describe(&svc.kafka, &group).await;
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].instance_id.as_deref(), Some("indexer-1"));
    for mut child in std::mem::take(&mut fleet.0) {
        sigterm(&child);
        assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    }
}

fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    raw.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A broker without KIP-848 consumer groups (only the classic protocol
/// enabled): the default protocol is refused there, and the consumer joins
/// again under the classic protocol by itself and consumes everything.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_broker_without_kip_848_the_default_falls_back_to_the_classic_protocol() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let mut kafka = OwnKafka::with_properties(
        &dir.path().join("kafka"),
        "group.coordinator.rebalance.protocols=classic\n",
    );
    tokio::task::block_in_place(|| kafka.start());
    let brokers = kafka.brokers();
    let topic = unique("fallback");
    let group = unique("fallback");
    create_topic(&brokers, &topic, 2).await;
    let p = pipeline(dir.path(), "fallback", &brokers, &topic, &group, "");
    let state = dir.path().join("index");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let mut child = spawn_run(&p, &state, &["--role", "index"], Stdio::piped());
    let reader = count_messages(&mut child, seen.clone());
    let mut fleet = Fleet(vec![]);
    produce(&brokers, &topic, 0..500).await;
    wait_for_all(&seen, 500, "500 records through the classic fallback").await;
    let d = settled(&brokers, &group, 1, 2).await;
    let log = std::fs::read_to_string(state.with_extension("log")).unwrap();
    fleet.0.push(child);
    for mut child in std::mem::take(&mut fleet.0) {
        sigterm(&child);
        assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    }
    reader.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    let duplicated: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "fallback: group type {}, written 500, printed {} distinct, duplicated {duplicated}",
        d.kind,
        seen.len()
    );
    assert_eq!(d.kind, "classic", "{d:?}");
    assert!(
        log.contains("do not support the KIP-848 consumer group protocol"),
        "{log}"
    );
    assert!(log.contains("protocol=\"classic\""), "{log}");
    assert_eq!(seen.len(), 500);
    assert_eq!(duplicated, 0);
}

/// Under the classic protocol a consumer elsewhere that joins with this
/// member's `group.instance.id` fences it (librdkafka: fatal): logpipe's
/// pipeline fails with that reason, naming group and id, instead of
/// consuming nothing for good.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_fenced_by_another_with_its_instance_id_fails_with_the_reason() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("fenced");
    let group = unique("fenced");
    create_topic(&svc.kafka, &topic, 1).await;
    let p = pipeline(
        dir.path(),
        "fenced",
        &svc.kafka,
        &topic,
        &group,
        "group_protocol = \"classic\"\ngroup_instance_id = \"shared-id\"\n",
    );
    let state = dir.path().join("index");
    let child = spawn_run(&p, &state, &["--role", "index"], Stdio::null());
    let mut fleet = Fleet(vec![child]);
    settled(&svc.kafka, &group, 1, 1).await;
    // another host's process, as far as the broker can tell
    let (kafka, g, t) = (svc.kafka.clone(), group.clone(), topic.clone());
    let other = std::thread::spawn(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka)
            .set("group.id", &g)
            .set("group.instance.id", "shared-id")
            .set("group.protocol", "classic")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap();
        c.subscribe(&[t.as_str()]).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < until {
            if let Some(Err(e)) = c.poll(Duration::from_millis(100)) {
                eprintln!("the other member: {e}");
            }
        }
    });
    let status = wait_exit(&mut fleet.0[0], Duration::from_secs(60));
    fleet.0.clear();
    other.join().unwrap();
    let log = std::fs::read_to_string(state.with_extension("log")).unwrap();
    println!(
        "fenced: exit {status}; {}",
        log.lines()
            .find(|l| l.contains("was fenced"))
            .unwrap_or("no fenced line")
    );
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "Kafka consumer of group {group} at {} was fenced: another member joined with the same group_instance_id shared-id",
            svc.kafka
        )),
        "{log}"
    );
}
