//! `logpipe import` on the reference deployment (Filebeat's and Logstash's
//! configs of the tutorial logpipe replaces, copied into
//! tests/fixtures/import): the files it writes, `logpipe check` on them,
//! and the written pipelines run against the test services, routing the
//! access and the error log to their daily indices by tag.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn import(out: &Path, extra: &[&str]) -> Output {
    logpipe()
        .arg("import")
        .arg("--filebeat")
        .arg(fixture("filebeat.yml"))
        .arg("--logstash")
        .arg(fixture("logstash.conf"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_reference_deployment_imports_into_two_pipelines_that_check() {
    let dir = temp_dir();
    let out = dir.path().join("pipelines");
    let result = import(&out, &[]);
    let stderr = text(&result.stderr);
    // One thing is left out, and said so: Logstash's consumer offsets.
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with(&format!(
            "{}:2:3: warning: 2 sources ship to topic `httpd`, which Logstash reads in one consumer group `logstash`",
            fixture("logstash.conf").display()
        )),
        "{stderr}"
    );
    assert!(warnings[0].contains(" — at the switch, set them to group `logstash`'s offsets"));

    let access = std::fs::read_to_string(out.join("httpd_access.toml")).unwrap();
    let error = std::fs::read_to_string(out.join("httpd_error.toml")).unwrap();
    assert_eq!(
        text(&result.stdout),
        format!(
            "wrote {}\nwrote {}\n",
            out.join("httpd_access.toml").display(),
            out.join("httpd_error.toml").display()
        )
    );
    for (file, tag, other) in [
        (&access, "httpd_access", "httpd_error"),
        (&error, "httpd_error", "httpd_access"),
    ] {
        assert!(file.contains(&format!("tags = [\"{tag}\"]")), "{file}");
        assert!(
            file.contains("brokers = [\"10.0.0.75:9092\", \"10.0.0.76:9092\", \"10.0.0.77:9092\"]")
        );
        assert!(file.contains("topic = \"httpd\"\n"));
        assert!(file.contains(&format!("group_id = \"logstash-{tag}\"\n")));
        assert!(file.contains(
            "auto_offset_reset = \"latest\"\ndecorate_events = false\ncodec = \"json\"\n"
        ));
        assert!(file.contains(&format!("if = '\"{tag}\" in [tags]'")));
        assert!(file.contains(&format!(
            ": if \"{tag}\" in [tags] (true for this source's events)"
        )));
        assert!(file.contains(&format!("index = \"{tag}-%{{+YYYY.MM.dd}}\"")));
        assert!(!file.contains(&format!("index = \"{other}-")), "{file}");
        assert!(file.contains("hosts = [\"10.0.0.72:9200\", \"10.0.0.74:9200\"]"));
    }

    let check = logpipe().arg("check").arg(&out).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    let ok = text(&check.stdout);
    assert!(
        ok.contains("(httpd_access): 1 input(s), kafka hop, 1 filter(s), 2 output(s)"),
        "{ok}"
    );
    assert!(
        ok.contains("(httpd_error): 1 input(s), kafka hop, 1 filter(s), 2 output(s)"),
        "{ok}"
    );

    // A second import does not replace them unless told to.
    let again = import(&out, &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("exists: nothing was written"));
    assert_eq!(import(&out, &["--force"]).status.code(), Some(1));
}

#[test]
fn a_dry_run_prints_the_files_and_writes_nothing() {
    let dir = temp_dir();
    let out = dir.path().join("pipelines");
    let result = import(&out, &["--dry-run"]);
    assert_eq!(result.status.code(), Some(1));
    let printed = text(&result.stdout);
    assert!(printed.contains(&format!(
        "# ==> {} <==\n",
        out.join("httpd_access.toml").display()
    )));
    assert!(printed.contains("index = \"httpd_error-%{+YYYY.MM.dd}\""));
    assert!(!out.exists());
}

#[test]
fn inputs_that_cannot_be_parsed_exit_2_with_their_position() {
    let dir = temp_dir();
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "output {\n  if \"x\" in [tags] {\n    stdout { codec => }\n  }\n}\n",
    )
    .unwrap();
    let result = logpipe()
        .arg("import")
        .arg("--filebeat")
        .arg(fixture("filebeat.yml"))
        .arg("--logstash")
        .arg(&bad)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    assert_eq!(
        text(&result.stderr),
        format!(
            "{}:3:23: error: expected a value (string, number, bare word, array or hash), found `}}`\n",
            bad.display()
        )
    );
    assert!(result.stdout.is_empty());
}

/// The written file with the reference deployment's hosts, paths, topic
/// and groups pointed at this test's own.
fn rewire(file: &str, log: &Path, svc: &Services, topic: &str, run: &str) -> String {
    let kafka_hosts = "[\"10.0.0.75:9092\", \"10.0.0.76:9092\", \"10.0.0.77:9092\"]";
    let es_hosts = "[\"10.0.0.72:9200\", \"10.0.0.74:9200\"]";
    let mut out = String::new();
    for line in file.lines() {
        let line = if line.starts_with("paths = ") {
            format!("paths = [{}]", quote(&log.display().to_string()))
        } else if let Some(written) = line.strip_prefix("group_id = ") {
            // This run's own groups, as alike or as different as written.
            format!(
                "group_id = {}",
                quote(&format!("{run}-{}", written.trim_matches('"')))
            )
        } else if line == "topic = \"httpd\"" {
            format!("topic = {}", quote(topic))
        } else if line == "auto_offset_reset = \"latest\"" {
            // The topic is this test's own: "earliest" reads only its lines,
            // where "latest" would race the group's first offset lookup.
            "auto_offset_reset = \"earliest\"".to_owned()
        } else {
            line.replace(kafka_hosts, &quote(&svc.kafka))
                .replace(es_hosts, &quote(&svc.es))
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert_ne!(out, file);
    out
}

/// Hits whose `message` contains `marker`, in the indices of `pattern`.
async fn marked(es: &Es, pattern: &str, marker: &str) -> Vec<Value> {
    es.refresh(pattern).await;
    let (_, body) = es
        .post(
            &format!("{pattern}/_search"),
            json!({"size": 100, "query": {"match_phrase": {"message": marker}}}),
        )
        .await;
    body["hits"]["hits"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_imported_pipelines_route_access_and_error_lines_to_their_daily_indices() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let written = dir.path().join("written");
    assert_eq!(import(&written, &[]).status.code(), Some(1));

    let marker = unique("imported").replace('-', "");
    let access_log = dir.path().join("access_log");
    let error_log = dir.path().join("error_log");
    write_lines(
        &access_log,
        (0..3).map(|i| format!("192.0.2.{i} - - [03/Dec/2026:10:00:0{i} +0000] \"GET /{marker}/{i} HTTP/1.1\" 200 {i}")),
    );
    write_lines(
        &error_log,
        (0..2).map(|i| {
            format!("[Thu Dec 03 10:00:0{i} 2026] [error] [client 192.0.2.1] {marker} oops {i}")
        }),
    );
    backdate(&access_log, QUIET);
    backdate(&error_log, QUIET);

    let topic = unique("httpd");
    ensure_topic(&svc.kafka, &topic, 3).await;
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    let run = unique("import");
    for (name, log) in [("httpd_access", &access_log), ("httpd_error", &error_log)] {
        let file = std::fs::read_to_string(written.join(format!("{name}.toml"))).unwrap();
        std::fs::write(
            pipelines.join(format!("{name}.toml")),
            rewire(&file, log, &svc, &topic, &run),
        )
        .unwrap();
    }
    let check = logpipe().arg("check").arg(&pipelines).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));

    let state = dir.path().join("state");
    // The Logstash config's `stdout { codec => rubydebug }` prints every event.
    let mut child = spawn_run(&pipelines, &state, &["--role", "all"], Stdio::null());
    let es = Es::new(&svc.es);
    let access = eventually(
        Duration::from_secs(120),
        "3 access lines indexed",
        || async {
            let hits = marked(&es, "httpd_access-*", &marker).await;
            (hits.len() >= 3).then_some(hits)
        },
    )
    .await;
    let errors = eventually(
        Duration::from_secs(120),
        "2 error lines indexed",
        || async {
            let hits = marked(&es, "httpd_error-*", &marker).await;
            (hits.len() >= 2).then_some(hits)
        },
    )
    .await;
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");

    // Each file read the whole topic in its own group and indexed only its
    // own source's lines, once, into its daily index (by the event's time,
    // here when it was read: the reference deployment parses nothing).
    assert_eq!(access.len(), 3, "{access:#?}");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for (hits, index, tag) in [
        (&access, "httpd_access", "httpd_access"),
        (&errors, "httpd_error", "httpd_error"),
    ] {
        for hit in hits {
            let doc = &hit["_source"];
            let day = doc["@timestamp"].as_str().unwrap()[..10].replace('-', ".");
            assert_eq!(hit["_index"], json!(format!("{index}-{day}")));
            assert_eq!(doc["tags"], json!([tag]));
            // Logstash's kafka input `type => "httpd_kafka"`.
            assert_eq!(doc["type"], json!("httpd_kafka"));
        }
    }
    let mut access_messages: Vec<&str> = access
        .iter()
        .map(|h| h["_source"]["message"].as_str().unwrap())
        .collect();
    access_messages.sort();
    assert!(access_messages[0].contains(&format!("\"GET /{marker}/0 HTTP/1.1\" 200 0")));
    assert!(errors
        .iter()
        .all(|h| h["_source"]["message"].as_str().unwrap().contains("oops")));
}
