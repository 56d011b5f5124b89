//! `logpipe check --connect` against the real Kafka and OpenSearch of the
//! test command: every target on its own line, exit 0 when all answer, 2
//! with a reason per failing target otherwise, and nothing changed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} from scripts/test.sh"))
}

/// A pipeline with a Kafka hop to `brokers`/`topic` (with `security`) and
/// an Elasticsearch output to `es`/`index`.
fn pipeline(
    dir: &Path,
    name: &str,
    brokers: &str,
    topic: &str,
    security: &str,
    es: &str,
    index: &str,
) -> PathBuf {
    let log = dir.join(format!("{name}.log-input"));
    write_lines(&log, ["x".to_owned()]);
    pipeline_toml(name)
        .file_input(&log)
        .kafka(brokers, topic)
        .with(security)
        .elasticsearch_output(es, index)
        .write_to(dir.join(format!("{name}.toml")))
}

fn check_connect(pipeline: &Path) -> (i32, String) {
    let out = logpipe()
        .args(["check", "--connect"])
        .arg(pipeline)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_target_answers_and_the_check_says_so() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("connect-ok");
    let index = unique("connect-ok");
    ensure_topic(&svc.kafka, &topic, 3).await;
    let p = pipeline(dir.path(), "ok", &svc.kafka, &topic, "", &svc.es, &index);
    succeeds(logpipe().arg("setup").arg(&p));
    let (code, text) = check_connect(&p);
    assert_eq!(code, 0, "{text}");
    assert!(
        line_with(&text, "kafka 127.0.0.1").starts_with("ok"),
        "{text}"
    );
    assert!(
        line_with(&text, &format!("kafka topic {topic}")).contains("ok    kafka topic")
            && text.contains("3 partition(s)"),
        "{text}"
    );
    let es = line_with(&text, "elasticsearch http");
    assert!(
        es.starts_with("ok") && es.contains("is installed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failing_target_gets_its_reason_and_exit_2() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    // A topic that does not exist, and an index whose template was never
    // installed; the check must not create either.
    let topic = unique("connect-missing");
    let index = unique("connect-missing");
    let p = pipeline(
        dir.path(),
        "missing",
        &svc.kafka,
        &topic,
        "",
        &svc.es,
        &index,
    );
    let (code, text) = check_connect(&p);
    assert_eq!(code, 2, "{text}");
    assert!(
        line_with(&text, "kafka 127.0.0.1").starts_with("ok"),
        "{text}"
    );
    let t = line_with(&text, &format!("kafka topic {topic}"));
    assert!(
        t.starts_with("FAIL") && t.contains("topics ensure"),
        "{text}"
    );
    let es = line_with(&text, "elasticsearch http");
    assert!(
        es.starts_with("FAIL") && es.contains("logpipe setup"),
        "{text}"
    );
    let (again, text) = check_connect(&p);
    assert_eq!(again, 2, "the check changed something:\n{text}");

    // Nothing listens: both halves unreachable, each named.
    let p = pipeline(
        dir.path(),
        "down",
        "127.0.0.1:9",
        &topic,
        "",
        "http://127.0.0.1:9",
        &index,
    );
    let (code, text) = check_connect(&p);
    assert_eq!(code, 2, "{text}");
    assert!(
        line_with(&text, "kafka 127.0.0.1:9").starts_with("FAIL"),
        "{text}"
    );
    assert!(
        line_with(&text, "elasticsearch http://127.0.0.1:9").starts_with("FAIL"),
        "{text}"
    );
    assert!(text.contains("2 of 2 target(s) failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_an_authentication_failure_that_names_the_mechanism() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let secret = "definitely-not-the-password";
    let security = format!(
        "[kafka.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"{}\"\npassword = \"{secret}\"\n",
        env("LOGPIPE_TEST_KAFKA_SCRAM_USER")
    );
    let p = pipeline(
        dir.path(),
        "auth",
        &env("LOGPIPE_TEST_KAFKA_SASL"),
        &unique("connect-auth"),
        &security,
        &svc.es,
        &unique("connect-auth"),
    );
    let (code, text) = check_connect(&p);
    assert_eq!(code, 2, "{text}");
    let broker = line_with(&text, "kafka 127.0.0.1");
    assert!(
        broker.starts_with("FAIL") && broker.contains("SCRAM-SHA-512"),
        "{text}"
    );
    assert!(!text.contains(secret), "the password was printed:\n{text}");
}
