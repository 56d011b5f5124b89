//! The observability endpoint and `logpipe status`, against a running
//! daemon and a stopped one.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metric_sample(metrics, name, labels)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_events_and_status_reads_the_daemon_and_the_checkpoints() {
    let dir = temp_dir();
    let log = dir.path().join("access_log");
    write_lines(&log, (0..500).map(|i| format!("line {i}")));
    let pipeline = pipeline_toml("m")
        .file_input(&log)
        .filter("mutate")
        .with("add_tag = [\"seen\"]")
        .stdout_output()
        .write_to(dir.path().join("m.toml"));
    let state = dir.path().join("state");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spawn_run(
        &pipeline,
        &state,
        &["--metrics-address", &addr],
        Stdio::piped(),
    );
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().take(500).count()
    });
    assert_eq!(printed.join().unwrap(), 500);

    let base = format!("http://{addr}");
    let metrics = eventually(Duration::from_secs(20), "metrics with 500 events", || {
        let base = base.clone();
        async move {
            let (_, text) = get(&format!("{base}/metrics")).await;
            (sample(
                &text,
                "logpipe_events_out_total",
                &["pipeline=\"m\"", "stage=\"output.stdout\""],
            ) == Some(500.0))
            .then_some(text)
        }
    })
    .await;
    assert_eq!(
        sample(&metrics, "logpipe_events_in_total", &["stage=\"filter\""]),
        Some(500.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "logpipe_events_in_total",
            &["stage=\"input.file\""]
        ),
        Some(500.0),
        "the file input counts the events it makes"
    );
    // Batch sizes land in event-count buckets, not in seconds buckets (where
    // every batch would be past the last bound).
    assert!(
        metrics.contains("logpipe_batch_events_bucket{pipeline=\"m\",stage=\"filter\",le=\"500\"}"),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "logpipe_events_filtered_total",
            &["pipeline=\"m\""]
        ),
        Some(0.0)
    );
    let behind = eventually(Duration::from_secs(10), "file gauges", || {
        let base = base.clone();
        async move {
            let (_, text) = get(&format!("{base}/metrics")).await;
            sample(&text, "logpipe_file_bytes_behind", &["pipeline=\"m\""])
        }
    })
    .await;
    assert_eq!(behind, 0.0, "read to the end");
    assert_eq!(
        sample(
            &get(&format!("{base}/metrics")).await.1,
            "logpipe_open_files",
            &["pipeline=\"m\""]
        ),
        Some(1.0)
    );
    let (status, health) = get(&format!("{base}/health")).await;
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    let status = |args: &[&str]| {
        let out = logpipe()
            .arg("status")
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Checkpoints are written every second: wait until one covers the file.
    let size = std::fs::metadata(&log).unwrap().len().to_string();
    let running = eventually(
        Duration::from_secs(20),
        "a checkpoint at the end of the file",
        || {
            let running = status(&["--metrics-address", &addr]);
            let done = running.contains(&size);
            async move { done.then_some(running) }
        },
    )
    .await;

    assert!(running.contains(&log.display().to_string()), "{running}");
    assert!(running.contains("healthy"), "{running}");
    assert!(running.contains("output.stdout"), "{running}");
    // Nothing was dead-lettered: that reads 0, not -0 (an empty f64 sum).
    assert!(running.contains("dead-lettered        0"), "{running}");
    assert!(!running.contains(" -0"), "{running}");

    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let stopped = status(&["--metrics-address", &addr]);
    assert!(stopped.contains(&log.display().to_string()), "{stopped}");
    assert!(stopped.contains("not reachable"), "{stopped}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_turns_503_while_elasticsearch_is_down_and_200_when_it_is_back() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let proxy = Proxy::start(
        svc.es
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
    )
    .await;
    let log = dir.path().join("access_log");
    write_lines(&log, (0..200).map(|i| format!("before {i}")));
    let index = unique("health");
    let pipeline = pipeline_toml("h")
        .file_input(&log)
        .with("poll_interval = \"50ms\"")
        .elasticsearch_output(&format!("http://127.0.0.1:{}", proxy.port), &index)
        .with("batch_wait = \"100ms\"\nprobe_interval = \"200ms\"")
        .write_to(dir.path().join("h.toml"));
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let mut child = spawn_run(
        &pipeline,
        &dir.path().join("state"),
        &["--metrics-address", &addr],
        Stdio::null(),
    );
    let es = Es::new(&svc.es);
    eventually(Duration::from_secs(60), "200 documents", || async {
        (es.count(&index).await == 200).then_some(())
    })
    .await;
    let healthy = |want: u16| {
        let base = base.clone();
        async move {
            let (status, body) = get(&format!("{base}/health")).await;
            (status == want).then_some(body)
        }
    };
    eventually(Duration::from_secs(10), "/health 200", || healthy(200)).await;
    let metrics = eventually(Duration::from_secs(10), "indexed counter", || {
        let base = base.clone();
        async move {
            let (_, text) = get(&format!("{base}/metrics")).await;
            (sample(&text, "logpipe_es_items_total", &["result=\"indexed\""]) == Some(200.0))
                .then_some(text)
        }
    })
    .await;
    assert_eq!(
        sample(
            &metrics,
            "logpipe_events_out_total",
            &["stage=\"output.elasticsearch\""]
        ),
        Some(200.0)
    );
    assert!(
        metrics.contains("logpipe_es_bulk_seconds"),
        "bulk latency histogram"
    );

    proxy.set_up(false);
    write_lines(&log, (0..100).map(|i| format!("during {i}")));
    let body = eventually(Duration::from_secs(30), "/health 503", || healthy(503)).await;
    assert!(body.contains("output.elasticsearch"), "{body}");
    proxy.set_up(true);
    eventually(Duration::from_secs(60), "/health 200 again", || {
        healthy(200)
    })
    .await;
    eventually(Duration::from_secs(60), "300 documents", || async {
        (es.count(&index).await == 300).then_some(())
    })
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}
