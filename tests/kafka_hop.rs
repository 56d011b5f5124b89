//! The Kafka hop against the real broker: what the ship half writes, what
//! the index half commits, consumer groups that share and take over
//! partitions, and broker outages.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use serde_json::Value;

use common::*;

fn json_record(i: usize) -> (Option<String>, Vec<u8>) {
    let body = serde_json::json!({
        "@timestamp": "2026-11-25T10:00:00.000Z",
        "message": format!("m-{i:05}"),
        "tags": ["httpd_access"],
    });
    (Some(format!("k{i}")), body.to_string().into_bytes())
}

/// Messages of events printed by the stdout output, in arrival order.
fn message_of(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_events_read_back_have_the_filebeat_shape() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("ship");
    create_topic(&svc.kafka, &topic, 3).await;
    let log = dir.path().join("access_log");
    write_lines(&log, (0..300).map(|i| format!("line {i}")));
    let pipeline = pipeline_toml("ship")
        .file_input(&log)
        .with("tags = [\"httpd_access\"]\nfields = { log_type = \"access\" }")
        .kafka(&svc.kafka, &topic)
        .write_to(dir.path().join("ship.toml"));
    let mut child = spawn_run(
        &pipeline,
        &dir.path().join("state"),
        &["--role", "ship"],
        Stdio::null(),
    );

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &svc.kafka)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut seen = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "read back {} of 300",
            seen.len()
        );
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            seen.insert(v["message"].as_str().unwrap().to_owned(), v);
        }
    }
    let v = &seen["line 7"];
    assert_eq!(v["@metadata"]["beat"], "logpipe");
    assert_eq!(v["@metadata"]["type"], "_doc");
    assert_eq!(v["@metadata"]["_id"].as_str().unwrap().len(), 32);
    assert_eq!(v["tags"], serde_json::json!(["httpd_access"]));
    assert_eq!(v["fields"]["log_type"], "access");
    assert_eq!(v["log"]["file"]["path"], log.display().to_string());
    assert_eq!(v["log"]["offset"], 49);
    assert!(v["host"]["name"].is_string());
    assert!(v["@timestamp"].is_string());
    let ids: BTreeSet<&str> = seen
        .values()
        .map(|v| v["@metadata"]["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 300, "every line has its own origin id");

    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

/// An index pipeline printing its events, with metadata, to stdout.
fn index_pipeline(
    dir: &std::path::Path,
    name: &str,
    kafka: &str,
    topic: &str,
    group: &str,
) -> std::path::PathBuf {
    pipeline_toml(name)
        .kafka(kafka, topic)
        .group(group)
        .with("revoke_timeout = \"5s\"")
        .stdout_output()
        .with("metadata = true")
        .write_to(dir.join(format!("{name}.toml")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_after_the_committed_offsets_without_loss_or_repeats() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("commit");
    create_topic(&svc.kafka, &topic, 2).await;
    let mut records: Vec<(Option<String>, Vec<u8>)> = (0..3000).map(json_record).collect();
    records.push((Some("bad".into()), b"not json at all".to_vec()));
    produce(&svc.kafka, &topic, records).await;
    let pipeline = index_pipeline(dir.path(), "commit", &svc.kafka, &topic, &unique("group"));
    let state = dir.path().join("state");

    // First run: stopped once some events are out.
    let mut child = spawn_run(&pipeline, &state, &["--role", "index"], Stdio::piped());
    let lines = lines_of(&mut child);
    let mut first = Vec::new();
    while first.len() < 500 {
        first.push(
            lines
                .recv_timeout(Duration::from_secs(60))
                .expect("first run output"),
        );
    }
    sigterm(&child);
    first.extend(lines.iter());
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());

    // Second run: only the rest.
    let mut child = spawn_run(&pipeline, &state, &["--role", "index"], Stdio::piped());
    let lines = lines_of(&mut child);
    let mut second = Vec::new();
    while first.len() + second.len() < 3001 {
        second.push(
            lines
                .recv_timeout(Duration::from_secs(60))
                .expect("second run output"),
        );
    }
    // Nothing more arrives: no replays of what the first run delivered.
    assert!(lines.recv_timeout(Duration::from_secs(3)).is_err());
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());

    let all: Vec<String> = first.iter().chain(&second).map(|l| message_of(l)).collect();
    let unique_messages: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        all.len(),
        3001,
        "no record consumed twice across the restart"
    );
    assert_eq!(unique_messages.len(), 3001);
    let bad = first
        .iter()
        .chain(&second)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["message"] == "not json at all")
        .unwrap();
    assert_eq!(bad["tags"], serde_json::json!(["_jsonparsefailure"]));
    assert!(bad["@metadata"]["_id"]
        .as_str()
        .unwrap()
        .starts_with(&topic));
}

/// The stdout lines of a child, through a channel (reads in a thread).
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// How many partitions the last "Kafka partitions assigned." line of a
/// logpipe log gives (0 if none yet).
fn last_assignment(log: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.contains("Kafka partitions assigned."))
        .and_then(|l| l.split("partitions=").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_group_members_share_partitions_and_one_takes_over_after_a_kill() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("group");
    create_topic(&svc.kafka, &topic, 6).await;
    let group = unique("members");
    let a_pipeline = index_pipeline(dir.path(), "a", &svc.kafka, &topic, &group);
    let b_pipeline = index_pipeline(dir.path(), "b", &svc.kafka, &topic, &group);
    let mut a = spawn_run(
        &a_pipeline,
        &dir.path().join("a"),
        &["--role", "index"],
        Stdio::piped(),
    );
    let mut b = spawn_run(
        &b_pipeline,
        &dir.path().join("b"),
        &["--role", "index"],
        Stdio::piped(),
    );
    let (a_lines, b_lines) = (lines_of(&mut a), lines_of(&mut b));
    // A real broker gives all partitions to whoever joins first; produce
    // once the group has settled with both members (as the broker
    // describes it: the members' logs show only what each change added).
    let split = eventually(Duration::from_secs(60), "both members assigned", || {
        let (kafka, group) = (svc.kafka.clone(), group.clone());
        async move {
            let d = tokio::task::spawn_blocking(move || describe_group(&kafka, &group))
                .await
                .unwrap()
                .ok()?;
            let counts: Vec<usize> = d.members.iter().map(|m| m.partitions.len()).collect();
            (d.state == "Stable"
                && counts.len() == 2
                && counts.iter().all(|n| *n > 0)
                && counts.iter().sum::<usize>() == 6)
                .then_some(counts)
        }
    })
    .await;
    eprintln!("partitions: a {}, b {}", split[0], split[1]);

    produce(&svc.kafka, &topic, (0..600).map(json_record)).await;
    let mut from_a = BTreeSet::new();
    let mut from_b = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while from_a.union(&from_b).count() < 600 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of 600",
            from_a.union(&from_b).count()
        );
        from_a.extend(a_lines.try_iter().map(|l| message_of(&l)));
        from_b.extend(b_lines.try_iter().map(|l| message_of(&l)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "both members got partitions: a {}, b {}",
        from_a.len(),
        from_b.len()
    );
    eprintln!(
        "before the kill: a {} events, b {} events",
        from_a.len(),
        from_b.len()
    );

    a.kill().unwrap();
    a.wait().unwrap();
    produce(&svc.kafka, &topic, (600..1200).map(json_record)).await;
    let want: BTreeSet<String> = (0..1200).map(|i| format!("m-{i:05}")).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        from_b.extend(b_lines.try_iter().map(|l| message_of(&l)));
        let have: BTreeSet<String> = from_a.union(&from_b).cloned().collect();
        if have == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after the kill: {} of 1200",
            have.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&b);
    assert!(wait_exit(&mut b, Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_outage_holds_events_until_the_broker_is_back() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let (_slot, proxy) = proxied_broker().await;
    let brokers = format!("127.0.0.1:{}", proxy.port);
    let topic = unique("outage");
    create_topic(&brokers, &topic, 1).await;

    // Unreachable at start.
    proxy.set_up(false);
    let log = dir.path().join("access_log");
    write_lines(&log, (0..200).map(|i| format!("before {i}")));
    let pipeline = pipeline_toml("outage")
        .file_input(&log)
        .kafka(&brokers, &topic)
        .with("session_timeout = \"6s\"")
        .stdout_output()
        .write_to(dir.path().join("outage.toml"));
    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &["--role", "all"], Stdio::piped());
    let lines = lines_of(&mut child);
    assert!(
        lines.recv_timeout(Duration::from_secs(4)).is_err(),
        "nothing can arrive while the broker is unreachable"
    );
    proxy.set_up(true);
    let mut got = BTreeSet::new();
    while got.len() < 200 {
        got.insert(message_of(
            &lines
                .recv_timeout(Duration::from_secs(60))
                .expect("events after the broker came back"),
        ));
    }

    // Unreachable for a while mid-stream.
    proxy.set_up(false);
    write_lines(&log, (0..200).map(|i| format!("during {i}")));
    // A sleep, not a wait: the outage's length is the scenario.
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.set_up(true);
    while got.len() < 400 {
        got.insert(message_of(
            &lines
                .recv_timeout(Duration::from_secs(60))
                .expect("events held through the outage"),
        ));
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let want: BTreeSet<String> = (0..200)
        .flat_map(|i| [format!("before {i}"), format!("during {i}")])
        .collect();
    assert_eq!(got, want);

    // The logs said so, without repeating the same warning on every retry.
    let logs = std::fs::read_to_string(state.with_extension("log")).unwrap();
    let warnings = logs.lines().filter(|l| l.contains("WARN")).count();
    eprintln!("{warnings} warning lines over two outages (~12 s)");
    assert!(warnings >= 1, "the outage was logged");
    assert!(warnings <= 12, "warnings are throttled per cause:\n{logs}");
}

/// TLS to the broker's own SSL listener: its certificate is verified
/// against the test CA, host name included.
#[tokio::test(flavor = "multi_thread")]
async fn producer_and_consumer_work_over_tls() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let ssl = std::env::var("LOGPIPE_TEST_KAFKA_SSL").expect("LOGPIPE_TEST_KAFKA_SSL");
    let ca = std::path::Path::new(&std::env::var("LOGPIPE_TEST_CERTS").unwrap()).join("ca.pem");

    let log = dir.path().join("access_log");
    write_lines(&log, (0..100).map(|i| format!("tls {i}")));
    backdate(&log, QUIET);
    let topic = unique("tls");
    let pipeline = pipeline_toml("tls")
        .file_input(&log)
        .kafka(&ssl, &topic)
        .with("ensure_topic = true\nsession_timeout = \"6s\"")
        .with(&format!(
            "[kafka.tls]\nca = {}",
            quote(&ca.display().to_string())
        ))
        .stdout_output()
        .write_to(dir.path().join("tls.toml"));
    let mut child = spawn_run(
        &pipeline,
        &dir.path().join("state"),
        &["--role", "all"],
        Stdio::piped(),
    );
    let lines = lines_of(&mut child);
    let mut got = BTreeSet::new();
    while got.len() < 100 {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "over TLS: {} of 100; logpipe log:\n{}",
                    got.len(),
                    std::fs::read_to_string(dir.path().join("state.log")).unwrap_or_default()
                )
            });
        got.insert(message_of(&line));
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_ensure_creates_topics_and_reports_existing_ones() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("ensure");
    let pipeline = pipeline_toml("ensure")
        .kafka(&svc.kafka, &topic)
        .with("partitions = 4")
        .write_to(dir.path().join("ensure.toml"));
    let run = || {
        let out = succeeds(logpipe().args(["topics", "ensure"]).arg(&pipeline));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    assert!(
        first.contains(&format!("created {topic} (4 partitions")),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains(&format!("exists {topic} (4 partitions)")),
        "{second}"
    );

    let templated = pipeline_toml("templated")
        .kafka(&svc.kafka, "%{[fields][log_type]}")
        .with(&format!("topics = [{}]", quote(&topic)))
        .write_to(dir.path().join("templated.toml"));
    let out = logpipe()
        .args(["topics", "ensure"])
        .arg(&templated)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped %{[fields][log_type]}"));
}

/// An unreachable broker (a port nobody listens on): `topics ensure` says
/// so and names it, instead of `OperationTimedOut` after librdkafka's 60 s
/// request timeout. Needs no services.
#[test]
fn topics_ensure_with_an_unreachable_broker_says_so_and_names_it() {
    let dir = temp_dir();
    let broker = format!("127.0.0.1:{}", free_port());
    let pipeline = pipeline_toml("unreachable")
        .kafka(&broker, "t")
        .write_to(dir.path().join("unreachable.toml"));
    let started = std::time::Instant::now();
    let mut child = logpipe()
        .args(["topics", "ensure"])
        .arg(&pipeline)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Generous: what is measured is printed, and the old behaviour (a 60 s
    // request timeout) does not finish within it.
    let status = wait_exit(&mut child, Duration::from_secs(30));
    println!("topics ensure answered after {:?}", started.elapsed());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    assert!(!status.success());
    assert!(
        text.contains(&format!(
            "the Kafka brokers {broker} did not answer within 5s"
        )),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
}

/// `ensure_topic = true` on a host that runs only the index half.
#[tokio::test(flavor = "multi_thread")]
async fn ensure_topic_creates_the_topic_under_role_index() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("ensure-index");
    let pipeline = pipeline_toml("ensureindex")
        .kafka(&svc.kafka, &topic)
        .with("partitions = 3\nensure_topic = true")
        .stdout_output()
        .write_to(dir.path().join("ensureindex.toml"));
    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &["--role", "index"], Stdio::piped());
    let lines = lines_of(&mut child);
    wait_for_text(
        &state.with_extension("log"),
        "Created Kafka topic.",
        1,
        Duration::from_secs(60),
    );
    // With the partitions the pipeline asks for (a topic auto-created by a
    // producer would have the broker's default).
    let out = logpipe()
        .args(["topics", "ensure"])
        .arg(&pipeline)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("exists {topic} (3 partitions)")),
        "{stdout}"
    );
    produce(&svc.kafka, &topic, (0..20).map(json_record)).await;
    let mut got = BTreeSet::new();
    while got.len() < 20 {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("events from the created topic");
        assert!(got.insert(message_of(&line)), "repeated: {line}");
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert_eq!(got, (0..20).map(|i| format!("m-{i:05}")).collect());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_too_large_for_the_broker_is_dead_lettered_and_the_rest_delivered() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("large");
    create_topic(&svc.kafka, &topic, 1).await;
    let log = dir.path().join("access_log");
    let mut lines: Vec<String> = (0..50).map(|i| format!("small {i}")).collect();
    lines.insert(25, format!("large {}", "x".repeat(20_000)));
    write_lines(&log, lines);
    let pipeline = pipeline_toml("large")
        .file_input(&log)
        .kafka(&svc.kafka, &topic)
        .with("message_max_bytes = 10000\nsession_timeout = \"6s\"")
        .stdout_output()
        .write_to(dir.path().join("large.toml"));
    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &["--role", "all"], Stdio::piped());
    let lines = lines_of(&mut child);
    let mut got = BTreeSet::new();
    while got.len() < 50 {
        got.insert(message_of(
            &lines
                .recv_timeout(Duration::from_secs(60))
                .expect("small events"),
        ));
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert!(got.iter().all(|m| m.starts_with("small")));
    let dead = std::fs::read_to_string(state.join("dead-letter/large.ndjson")).unwrap();
    let records: Vec<Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert!(records[0]["event"]["message"]
        .as_str()
        .unwrap()
        .starts_with("large "));
    assert_eq!(records[0]["stage"], "output.kafka");
    assert!(
        records[0]["reason"].as_str().unwrap().contains("refuses"),
        "{}",
        records[0]
    );
}

/// A SIGHUP that changes nothing in the pipeline's file leaves its consumer
/// alone: no partition is revoked or assigned again (the group does not
/// rebalance), and events go on arriving once each.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_changes_nothing_keeps_the_consumer_in_its_group() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("reload");
    create_topic(&svc.kafka, &topic, 2).await;
    let group = unique("reload");
    let pipeline = index_pipeline(dir.path(), "stay", &svc.kafka, &topic, &group);
    let mut child = spawn_run(
        &pipeline,
        &dir.path().join("stay"),
        &["--role", "index"],
        Stdio::piped(),
    );
    let lines = lines_of(&mut child);
    let log = dir.path().join("stay.log");
    eventually(Duration::from_secs(60), "the assignment", || {
        let n = last_assignment(&log);
        async move { (n == 2).then_some(()) }
    })
    .await;
    produce(&svc.kafka, &topic, (0..100).map(json_record)).await;
    let mut got = BTreeSet::new();
    while got.len() < 100 {
        got.insert(message_of(
            &lines
                .recv_timeout(Duration::from_secs(60))
                .expect("events before the reload"),
        ));
    }

    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(Duration::from_secs(30), "the reload", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move { text.contains("Reload done.").then_some(()) }
    })
    .await;
    // longer than the session timeout (6 s classic, 10 s for the test
    // broker's KIP-848 groups): a member that left would be gone
    // (a sleep, not a wait: the time passing is the scenario)
    tokio::time::sleep(Duration::from_secs(12)).await;
    produce(&svc.kafka, &topic, (100..200).map(json_record)).await;
    let mut after = 0;
    while got.len() < 200 {
        let m = message_of(
            &lines
                .recv_timeout(Duration::from_secs(60))
                .expect("events after the reload"),
        );
        assert!(got.insert(m.clone()), "{m} came twice");
        after += 1;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let assigned = text.matches("Kafka partitions assigned.").count();
    let revoked = text.matches("Kafka partitions revoked").count();
    println!(
        "reload with nothing changed: 100 events before, {after} after, assignments {assigned}, revocations {revoked}"
    );
    assert_eq!(assigned, 1, "assigned again after the reload:\n{text}");
    assert_eq!(revoked, 0, "revoked by the reload:\n{text}");
}
