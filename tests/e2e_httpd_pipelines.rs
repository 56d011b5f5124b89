//! The shipped httpd pipelines end to end against the real services: access
//! and error logs are tailed, shipped through Kafka, parsed by the presets'
//! filters and indexed, and the documents carry typed ECS fields. A second
//! test routes one topic to two indices by tag, as the seed deployment does.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn wait_count(es: &Es, pattern: &str, want: u64) {
    eventually(
        Duration::from_secs(120),
        &format!("{want} documents in {pattern}"),
        || async { (es.count(pattern).await >= want).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_pipelines_index_typed_ecs_fields() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let (log_day, iso_day) = random_day();
    let index_day = iso_day.replace('-', ".");
    let access = dir.path().join("access_log");
    let error = dir.path().join("error_log");
    write_lines(
        &access,
        [
            format!("192.0.2.10 - alice [{log_day}:10:00:00 +0200] \"GET /shop/cart.php?id=7 HTTP/1.1\" 200 1234 \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\""),
            format!("2001:db8::1 - - [{log_day}:10:00:01 +0000] \"POST /login HTTP/2.0\" 503 -"),
            format!("192.0.2.11 - - [{log_day}:10:00:02 +0000] \"-\" 408 -"),
        ],
    );
    let error_time = format!(
        "{} 11:30:00.250000 {}",
        chrono::NaiveDate::parse_from_str(&iso_day, "%Y-%m-%d")
            .unwrap()
            .format("%a %b %d"),
        &iso_day[..4]
    );
    write_lines(
        &error,
        [format!("[{error_time}] [core:error] [pid 4242:tid 77] [client 192.0.2.12:5000] AH00128: File does not exist: /srv/www/x")],
    );
    // Complete, quiet logs: read at once although under 1024 bytes.
    backdate(&access, QUIET);
    backdate(&error, QUIET);

    let state = dir.path().join("state");
    let log = std::fs::File::create(dir.path().join("logpipe.log")).unwrap();
    let mut child = logpipe()
        .arg("run")
        .arg(repo_file("pipelines/httpd-access.toml"))
        .arg(repo_file("pipelines/httpd-error.toml"))
        .arg("--state-dir")
        .arg(&state)
        .env("LOGPIPE_ACCESS_LOG", &access)
        .env("LOGPIPE_ERROR_LOG", &error)
        .env("KAFKA_BROKERS", &svc.kafka)
        .env("ES_HOSTS", &svc.es)
        // Error logs carry no offset: they are read in the writer's zone.
        .env("TZ", "UTC")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    let es = Es::new(&svc.es);
    let access_index = format!("httpd_access-{index_day}");
    let error_index = format!("httpd_error-{index_day}");
    wait_count(&es, &access_index, 3).await;
    wait_count(&es, &error_index, 1).await;

    let mut hits = es.search_all(&access_index, 10).await;
    hits.sort_by_key(|h| h["_source"]["@timestamp"].as_str().unwrap().to_owned());
    let docs: Vec<&Value> = hits.iter().map(|h| &h["_source"]).collect();
    assert_eq!(docs.len(), 3);
    // 10:00:00 +0200 is 08:00:00 UTC, the earliest of the three.
    assert_eq!(
        docs[0]["@timestamp"],
        json!(format!("{iso_day}T08:00:00.000Z"))
    );
    assert_eq!(docs[0]["http"]["response"]["status_code"], json!(200));
    assert!(
        docs[0]["http"]["response"]["status_code"].is_u64(),
        "status is a number"
    );
    assert_eq!(docs[0]["http"]["response"]["body"]["bytes"], json!(1234));
    assert_eq!(docs[0]["source"]["ip"], json!("192.0.2.10"));
    assert_eq!(docs[0]["user"]["name"], json!("alice"));
    assert_eq!(docs[0]["url"]["path"], json!("/shop/cart.php"));
    assert_eq!(docs[0]["url"]["extension"], json!("php"));
    assert_eq!(docs[0]["event"]["dataset"], json!("apache.access"));
    assert_eq!(docs[0]["tags"], json!(["httpd_access"]));
    assert_eq!(
        docs[1]["@timestamp"],
        json!(format!("{iso_day}T10:00:01.000Z"))
    );
    assert_eq!(docs[1]["source"]["ip"], json!("2001:db8::1"));
    assert_eq!(docs[1]["event"]["outcome"], json!("failure"));
    assert!(docs[2]["url"].is_null(), "a dash request has no url");
    assert_eq!(docs[2]["http"]["response"]["status_code"], json!(408));

    let errors = es.search_all(&error_index, 10).await;
    let doc = &errors[0]["_source"];
    assert_eq!(doc["@timestamp"], json!(format!("{iso_day}T11:30:00.250Z")));
    assert_eq!(doc["process"]["pid"], json!(4242));
    assert_eq!(doc["source"]["port"], json!(5000));
    assert_eq!(doc["error"]["code"], json!("AH00128"));
    assert_eq!(doc["log"]["level"], json!("error"));
    assert_eq!(doc["message"], json!("File does not exist: /srv/www/x"));
    assert_eq!(doc["tags"], json!(["httpd_error"]));

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_topic_is_routed_to_two_indices_by_tag() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let topic = unique("httpd");
    let prefix = unique("routed");
    let (log_day, _) = random_day();
    let access = dir.path().join("access_log");
    let error = dir.path().join("error_log");
    write_lines(
        &access,
        (0..20).map(|i| {
            format!("192.0.2.{i} - - [{log_day}:10:00:00 +0000] \"GET /{i} HTTP/1.1\" 200 {i}")
        }),
    );
    write_lines(
        &error,
        (0..5).map(|i| format!("[Mon Dec 26 16:22:0{i} 2016] [error] [client 192.0.2.1] oops {i}")),
    );
    backdate(&access, QUIET);
    backdate(&error, QUIET);
    let pipeline = dir.path().join("httpd.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
name = "{topic}"
[[input]]
type = "file"
paths = ["{access}"]
tags = ["httpd_access"]
[[input]]
type = "file"
paths = ["{error}"]
tags = ["httpd_error"]

[kafka]
brokers = "{kafka}"
topic = "{topic}"
session_timeout = "6s"

[[filter]]
type = "if"
if = '"httpd_access" in [tags]'
then = [{{ type = "grok", match = {{ message = "^%{{HTTPD_COMMONLOG}}" }} }}]
else = [{{ type = "grok", match = {{ message = "^%{{HTTPD_ERRORLOG}}" }}, overwrite = ["message"] }}]

[[output]]
type = "elasticsearch"
if = '"httpd_access" in [tags]'
hosts = "{es}"
index = "{prefix}-access"
batch_wait = "200ms"

[[output]]
type = "elasticsearch"
if = '"httpd_error" in [tags]'
hosts = "{es}"
index = "{prefix}-error"
batch_wait = "200ms"
"#,
            access = access.display(),
            error = error.display(),
            kafka = svc.kafka,
            es = svc.es,
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut child = spawn_run(&pipeline, &state, &["--role", "all"], Stdio::null());
    let es = Es::new(&svc.es);
    wait_count(&es, &format!("{prefix}-access"), 20).await;
    wait_count(&es, &format!("{prefix}-error"), 5).await;
    // A sleep, not a wait: a negative check, no duplicate may arrive meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(es.count(&format!("{prefix}-access")).await, 20);
    assert_eq!(es.count(&format!("{prefix}-error")).await, 5);
    for hit in es.search_all(&format!("{prefix}-access"), 50).await {
        assert_eq!(hit["_source"]["tags"], json!(["httpd_access"]));
        assert!(hit["_source"]["http"]["response"]["status_code"].is_u64());
    }
    for hit in es.search_all(&format!("{prefix}-error"), 50).await {
        assert_eq!(hit["_source"]["tags"], json!(["httpd_error"]));
        assert_eq!(hit["_source"]["log"]["level"], json!("error"));
    }

    // Every batch was acknowledged though each output saw only part of it:
    // the process drains and exits cleanly.
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");
}
