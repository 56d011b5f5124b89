//! The Kafka hop over the broker's own SASL and TLS listeners (the real
//! Apache Kafka started by scripts/test.sh): SCRAM-SHA-512 and PLAIN on both
//! halves, TLS with CA verification, host name checking and client
//! certificates, and the errors a user sees when one of them is wrong —
//! without any secret in any log line.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} from scripts/test.sh"))
}

fn cert(name: &str) -> PathBuf {
    Path::new(&env("LOGPIPE_TEST_CERTS")).join(name)
}

/// A pipeline file → Kafka (`brokers`, with `security` appended to
/// `[kafka]`) → stdout, with `n` numbered lines already in its log.
fn pipeline(dir: &Path, name: &str, brokers: &str, security: &str, n: usize) -> PathBuf {
    let log = dir.join(format!("{name}.log-input"));
    write_lines(&log, (0..n).map(|i| format!("{name} line {i}")));
    backdate(&log, QUIET);
    pipeline_toml(name)
        .file_input(&log)
        .kafka(brokers, &unique(name))
        .with("ensure_topic = true\nsession_timeout = \"6s\"")
        .with(security)
        .stdout_output()
        .write_to(dir.join(format!("{name}.toml")))
}

fn spawn(dir: &Path, pipeline: &Path) -> (Child, std::sync::mpsc::Receiver<String>, PathBuf) {
    let state = dir.join(format!(
        "{}-state",
        pipeline.file_stem().unwrap().to_string_lossy()
    ));
    let mut child = spawn_run(pipeline, &state, &["--role", "all"], Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, state.with_extension("log"))
}

/// Runs the pipeline (both halves: producer and consumer) until `n` events
/// came back; the count of each message (so duplicates show) and the log.
fn deliver(dir: &Path, pipeline: &Path, n: usize) -> (BTreeMap<String, usize>, String) {
    let (mut child, lines, log) = spawn(dir, pipeline);
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while got.values().sum::<usize>() < n {
        match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                *got.entry(v["message"].as_str().unwrap().to_owned())
                    .or_insert(0) += 1;
            }
            Err(_) if Instant::now() < deadline => {}
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{}: {} of {n} events; log:\n{}",
                    pipeline.display(),
                    got.len(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
    // a moment for a duplicate to show, then a clean stop (a sleep, not a
    // wait: a negative check)
    std::thread::sleep(Duration::from_millis(500));
    for line in lines.try_iter() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        *got.entry(v["message"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("the log {} of logpipe: {e}", log.display()));
    (got, text)
}

/// Runs the pipeline until its log has a line containing `pattern` (60 s at
/// most); no event may arrive meanwhile. Returns that line and the log.
fn refused(dir: &Path, pipeline: &Path, pattern: &str) -> (String, String) {
    let (mut child, lines, log) = spawn(dir, pipeline);
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(pattern)) {
            break line.to_owned();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no log line with {pattern:?} within 60 s; log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = child.kill();
    let _ = child.wait();
    let events: Vec<String> = lines.try_iter().collect();
    assert!(events.is_empty(), "events arrived: {events:?}");
    (found, std::fs::read_to_string(&log).unwrap())
}

fn exact(what: &str, got: &BTreeMap<String, usize>, name: &str, n: usize) {
    let lost = (0..n)
        .filter(|i| !got.contains_key(&format!("{name} line {i}")))
        .count();
    let duplicated = got.values().filter(|c| **c > 1).count();
    println!(
        "{what}: written {n}, delivered {}, lost {lost}, duplicated {duplicated}",
        got.len()
    );
    assert_eq!((lost, duplicated, got.len()), (0, 0, n), "{what}");
}

fn assert_no_secret(log: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!s.is_empty());
        for line in log.lines() {
            assert!(!line.contains(s), "a secret in the log: {line}");
        }
    }
}

fn sasl(mechanism: &str, user: &str, password: &str) -> String {
    format!("[kafka.sasl]\nmechanism = \"{mechanism}\"\nusername = \"{user}\"\npassword = \"{password}\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_scram_sha_512_carries_both_halves_and_no_secret_is_logged() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let password = env("LOGPIPE_TEST_KAFKA_SCRAM_PASSWORD");
    let security = sasl(
        "SCRAM-SHA-512",
        &env("LOGPIPE_TEST_KAFKA_SCRAM_USER"),
        &password,
    );
    let p = pipeline(
        dir.path(),
        "scram",
        &env("LOGPIPE_TEST_KAFKA_SASL"),
        &security,
        200,
    );
    let (got, log) = deliver(dir.path(), &p, 200);
    exact("SASL SCRAM-SHA-512", &got, "scram", 200);
    assert_no_secret(&log, &[&password]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_plain_from_a_password_file_carries_both_halves() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let password = env("LOGPIPE_TEST_KAFKA_PLAIN_PASSWORD");
    let file = dir.path().join("kafka-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let security = format!(
        "[kafka.sasl]\nmechanism = \"PLAIN\"\nusername = \"{}\"\npassword_file = \"{}\"\n",
        env("LOGPIPE_TEST_KAFKA_PLAIN_USER"),
        file.display()
    );
    let p = pipeline(
        dir.path(),
        "plain",
        &env("LOGPIPE_TEST_KAFKA_SASL"),
        &security,
        200,
    );
    let (got, log) = deliver(dir.path(), &p, 200);
    exact("SASL PLAIN", &got, "plain", 200);
    assert_no_secret(&log, &[&password]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_naming_the_broker_and_mechanism() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let broker = env("LOGPIPE_TEST_KAFKA_SASL");
    let right = env("LOGPIPE_TEST_KAFKA_SCRAM_PASSWORD");
    for (mechanism, user) in [
        ("SCRAM-SHA-512", env("LOGPIPE_TEST_KAFKA_SCRAM_USER")),
        ("PLAIN", env("LOGPIPE_TEST_KAFKA_PLAIN_USER")),
    ] {
        let wrong = format!("wrong-{}", fastrand::u64(..));
        let name = format!("wrong-{}", mechanism.to_ascii_lowercase());
        let p = pipeline(
            dir.path(),
            &name,
            &broker,
            &sasl(mechanism, &user, &wrong),
            10,
        );
        let (line, log) = refused(dir.path(), &p, "Authentication failed");
        println!("{mechanism}, wrong password: {line}");
        assert!(line.contains(&broker), "names the broker: {line}");
        assert!(line.contains(mechanism), "names the mechanism: {line}");
        assert_no_secret(&log, &[&wrong, &right]);

        // `topics ensure` fails, saying the same (once: it waits out the
        // admin request's timeout)
        if mechanism == "PLAIN" {
            // a shorter request timeout than librdkafka's 60 s default
            let text = std::fs::read_to_string(&p).unwrap().replace(
                "[kafka.sasl]",
                "properties = { \"socket.timeout.ms\" = \"15000\" }\n[kafka.sasl]",
            );
            std::fs::write(&p, text).unwrap();
            let out = logpipe()
                .args(["topics", "ensure"])
                .arg(&p)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            println!("{mechanism}, topics ensure: {stderr}");
            assert!(!out.status.success());
            assert!(stderr.contains(&broker), "names the broker: {stderr}");
            assert!(stderr.contains(mechanism), "names the mechanism: {stderr}");
            assert!(stderr.contains("Authentication failed"), "{stderr}");
            assert_no_secret(&stderr, &[&wrong, &right]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_client_certificate_on_a_listener_that_requires_one() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let broker = env("LOGPIPE_TEST_KAFKA_MTLS");
    let with_cert = format!(
        "[kafka.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert("ca.pem").display(),
        cert("client.pem").display(),
        cert("client.key").display()
    );
    let p = pipeline(dir.path(), "mtls", &broker, &with_cert, 150);
    let (got, _) = deliver(dir.path(), &p, 150);
    exact("TLS with a client certificate", &got, "mtls", 150);

    // the same listener without a client certificate: refused
    let without = format!("[kafka.tls]\nca = \"{}\"\n", cert("ca.pem").display());
    let p = pipeline(dir.path(), "nocert", &broker, &without, 10);
    let (line, _) = refused(dir.path(), &p, &broker);
    println!("TLS without the required client certificate: {line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_certificate_from_another_ca_is_a_clear_error() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let broker = env("LOGPIPE_TEST_KAFKA_SSL");
    let tls = format!("[kafka.tls]\nca = \"{}\"\n", cert("other-ca.pem").display());
    let p = pipeline(dir.path(), "wrongca", &broker, &tls, 10);
    let (line, _) = refused(dir.path(), &p, "certificate verify failed");
    println!("wrong CA: {line}");
    assert!(line.contains(&broker), "names the broker: {line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_certificate_for_another_host_name_is_refused() {
    let Some(_svc) = services() else { return };
    let dir = temp_dir();
    let broker = env("LOGPIPE_TEST_KAFKA_BADHOST");
    let tls = format!("[kafka.tls]\nca = \"{}\"\n", cert("ca.pem").display());
    let p = pipeline(dir.path(), "badhost", &broker, &tls, 10);
    let (line, _) = refused(dir.path(), &p, "certificate verify failed");
    println!("certificate for another host name: {line}");
    assert!(line.contains(&broker), "names the broker: {line}");
}
