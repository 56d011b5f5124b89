//! The shipped `pipelines/` as a user runs them: endpoints and paths from
//! the environment, the logpipe binary as a child process, first with role
//! `all`, then as two processes, one `--role ship` and one `--role index`.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

fn spawn(role: &str, state: &Path, env: &[(&str, String)]) -> Child {
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let log = std::fs::File::create(state.with_extension(format!("{role}.log"))).unwrap();
    let mut cmd = logpipe();
    cmd.arg("run")
        .arg(&pipelines)
        .args(["--role", role, "--metrics-address", "off"])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// A day of this run's own (in 2031–2040), so its daily indices hold only
/// its documents even when other tests use the shipped index names.
fn run_day() -> chrono::NaiveDateTime {
    let day = chrono::NaiveDate::from_ymd_opt(
        2031 + fastrand::i32(0..10),
        1 + fastrand::u32(0..12),
        1 + fastrand::u32(0..28),
    )
    .unwrap();
    day.and_hms_opt(10, 0, 0).unwrap()
}

fn access_line(day: chrono::NaiveDateTime, i: usize) -> String {
    let at = day.format("%d/%b/%Y:%H:%M:%S +0000");
    format!(
        "192.0.2.{} - - [{at}] \"GET /shipped/{i} HTTP/1.1\" 200 {i} \"-\" \"curl/8.5.0\"",
        i % 200
    )
}

fn error_line(day: chrono::NaiveDateTime, i: usize) -> String {
    let at = day.format("%a %b %d %H:%M:%S%.6f %Y");
    format!("[{at}] [core:error] [pid 4242:tid 140000000000] [client 192.0.2.9:51234] AH00128: File does not exist: /srv/www/missing-{i}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_pipelines_route_access_and_error_logs_to_their_daily_indices() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let access = dir.path().join("access_log");
    let error = dir.path().join("error_log");
    let day = run_day();
    let stamp = day.format("%Y.%m.%d").to_string();
    let (access_index, error_index) = (
        format!("httpd_access-{stamp}"),
        format!("httpd_error-{stamp}"),
    );
    write_lines(&access, (0..100).map(|i| access_line(day, i)));
    write_lines(&error, (0..20).map(|i| error_line(day, i)));
    let env = vec![
        ("LOGPIPE_ACCESS_LOG", access.display().to_string()),
        ("LOGPIPE_ERROR_LOG", error.display().to_string()),
        ("KAFKA_BROKERS", svc.kafka.clone()),
        ("ES_HOSTS", svc.es.clone()),
    ];

    // The topics, as an operator would make them.
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut ensure = logpipe();
    ensure.args(["topics", "ensure"]).arg(&pipelines);
    for (k, v) in &env {
        ensure.env(k, v);
    }
    let out = ensure.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let es = Es::new(&svc.es);
    let wait_counts = |access_n: u64, error_n: u64| {
        let (es, access_index, error_index) = (&es, &access_index, &error_index);
        async move {
            eventually(
                Duration::from_secs(120),
                "documents in both indices",
                || async move {
                    let a = es.count(access_index).await;
                    let e = es.count(error_index).await;
                    (a >= access_n && e >= error_n).then_some((a, e))
                },
            )
            .await
        }
    };

    // One process, both halves.
    let state = dir.path().join("all");
    let mut all = spawn("all", &state, &env);
    assert_eq!(wait_counts(100, 20).await, (100, 20));
    sigterm(&all);
    assert!(wait_exit(&mut all, Duration::from_secs(30)).success());

    // Two processes: a web host shipping, an indexer indexing. The ship side
    // resumes from the checkpoints the first run wrote; the index side from
    // the group's committed offsets.
    write_lines(&access, (100..150).map(|i| access_line(day, i)));
    write_lines(&error, (20..30).map(|i| error_line(day, i)));
    let mut ship = spawn("ship", &state, &env);
    let mut index = spawn("index", &dir.path().join("indexer"), &env);
    assert_eq!(wait_counts(150, 30).await, (150, 30));
    // A sleep, not a wait: a negative check, no duplicate may arrive meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(es.count(&access_index).await, 150, "nothing indexed twice");
    assert_eq!(es.count(&error_index).await, 30, "nothing indexed twice");
    for child in [&ship, &index] {
        sigterm(child);
    }
    assert!(wait_exit(&mut ship, Duration::from_secs(30)).success());
    assert!(wait_exit(&mut index, Duration::from_secs(30)).success());

    // Routed by source: access lines in httpd_access-YYYY.MM.dd, error
    // lines in httpd_error-YYYY.MM.dd, each stamped with the day of its
    // @timestamp.
    for (pattern, tag, prefix) in [
        (&access_index, "httpd_access", "httpd_access-"),
        (&error_index, "httpd_error", "httpd_error-"),
    ] {
        for hit in es.search_all(pattern, 200).await {
            let source = &hit["_source"];
            assert!(
                source["tags"].as_array().unwrap().iter().any(|t| t == tag),
                "{hit}"
            );
            let ts = chrono::DateTime::parse_from_rfc3339(source["@timestamp"].as_str().unwrap())
                .unwrap();
            let day = ts
                .with_timezone(&chrono::Utc)
                .format("%Y.%m.%d")
                .to_string();
            assert_eq!(hit["_index"].as_str().unwrap(), format!("{prefix}{day}"));
        }
    }
}
