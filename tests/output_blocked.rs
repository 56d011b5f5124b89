//! One output held down by a proxy while another works, against the real
//! search server: with `when_blocked = "spill"` the held one's events go to
//! its own dead-letter file and the other output indexes everything; once it
//! is back it takes batches again, and a replay of its dead letters makes it
//! whole, with no duplicate. With the default (`block`) the pipeline waits
//! and nothing is lost either.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const LINES: usize = 3000;

/// A file input and two Elasticsearch outputs: `primary` straight to the
/// server, `archive` through `archive_host` with `archive_settings`.
fn pipeline(
    dir: &std::path::Path,
    log: &std::path::Path,
    es: &str,
    (primary, archive): (&str, &str),
    archive_host: &str,
    archive_settings: &str,
) -> std::path::PathBuf {
    let path = dir.join("two.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "two"
[[input]]
type = "file"
paths = ["{log}"]
batch_events = 100

[[output]]
type = "elasticsearch"
id = "primary"
hosts = "{es}"
index = "{primary}"
batch_wait = "100ms"

[[output]]
type = "elasticsearch"
id = "archive"
hosts = "{archive_host}"
index = "{archive}"
batch_wait = "100ms"
probe_interval = "1s"
{archive_settings}
"#,
            log = log.display(),
        ),
    )
    .unwrap();
    path
}

fn lines() -> Vec<String> {
    (0..LINES)
        .map(|i| format!("line {i:05} {}", "x".repeat(60)))
        .collect()
}

/// `host:port` of a server URL, for the TCP proxy.
fn upstream(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// The value of a metric sample whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_output_spills_and_the_other_carries_on() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let (primary, archive) = (unique("spill-primary"), unique("spill-archive"));
    let log = dir.path().join("access_log");
    write_lines(&log, lines());
    let proxy = Proxy::start(upstream(&svc.es)).await;
    proxy.set_up(false);
    let dead_letters = dir.path().join("archive-dead-letters.ndjson");
    let pipeline = pipeline(
        dir.path(),
        &log,
        &svc.es,
        (&primary, &archive),
        &format!("127.0.0.1:{}", proxy.port),
        &format!(
            "when_blocked = \"spill\"\nblocked_timeout = \"2s\"\ndead_letter_path = \"{}\"",
            dead_letters.display()
        ),
    );
    let state = dir.path().join("state");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spawn_run(
        &pipeline,
        &state,
        &["--metrics-address", &addr],
        Stdio::null(),
    );
    let es = Es::new(&svc.es);

    // The archive is down from the start: the primary still gets every line.
    eventually(
        Duration::from_secs(120),
        "every line in the primary index while the archive is down",
        || async { (es.count(&primary).await >= LINES as u64).then_some(()) },
    )
    .await;
    let spilled_records = || {
        std::fs::read_to_string(&dead_letters)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    // The archive holds what it had taken (its channel and its request);
    // everything after that was spilled, once the fan-out finished the file.
    let spilled = eventually(Duration::from_secs(30), "the spill settles", || async {
        let a = spilled_records();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (a > 0 && a == spilled_records()).then_some(a)
    })
    .await;
    assert!(
        spilled < LINES,
        "the archive kept what it had taken: {spilled}"
    );
    let text = std::fs::read_to_string(&dead_letters).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["error_type"], "blocked");
    assert_eq!(first["output"], "archive");
    assert_eq!(first["pipeline"], "two");
    assert!(
        !state.join("dead-letter/two.ndjson").exists(),
        "the archive's dead letters go to its own file, not the pipeline's default"
    );

    let base = format!("http://{addr}");
    let (metrics, health) = eventually(Duration::from_secs(20), "the spill in /metrics", || {
        let base = base.clone();
        async move {
            let metrics = reqwest::get(format!("{base}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let health = reqwest::get(format!("{base}/health"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let counted = sample(
                &metrics,
                "logpipe_output_spilled_events_total",
                &["pipeline=\"two\"", "output=\"archive\""],
            )?;
            (counted as usize == spilled).then_some((metrics, health))
        }
    })
    .await;
    assert_eq!(
        sample(&metrics, "logpipe_output_blocked", &["output=\"archive\""]),
        Some(1.0),
        "{metrics}"
    );
    assert!(health.contains("spill[archive]"), "{health}");

    // Back up: the archive delivers what it held, and takes new batches
    // again instead of spilling them.
    proxy.set_up(true);
    let held = (LINES - spilled) as u64;
    eventually(
        Duration::from_secs(120),
        "the archive delivers what it held",
        || async { (es.count(&archive).await >= held).then_some(()) },
    )
    .await;
    let more: Vec<String> = (0..200)
        .map(|i| format!("after {i:03} {}", "y".repeat(60)))
        .collect();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for line in &more {
            writeln!(f, "{line}").unwrap();
        }
    }
    eventually(
        Duration::from_secs(120),
        "the new lines in both indices",
        || async {
            (es.count(&archive).await >= held + 200
                && es.count(&primary).await >= LINES as u64 + 200)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        spilled_records(),
        spilled,
        "nothing spilled once it was back"
    );
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");

    // Replaying the dead letters into the archive makes it whole: every
    // line once, the spilled ones under the ids they were first sent with.
    let replay = dir.path().join("replay.toml");
    std::fs::write(
        &replay,
        format!(
            r#"
name = "replay"
[[input]]
type = "dead_letter"
path = "{}"

[[output]]
type = "elasticsearch"
hosts = "{}"
index = "{archive}"
batch_wait = "100ms"
"#,
            dead_letters.display(),
            svc.es
        ),
    )
    .unwrap();
    let mut replayed = spawn_run(
        &replay,
        &dir.path().join("replay-state"),
        &["--metrics-address", "off"],
        Stdio::null(),
    );
    let status = wait_exit(&mut replayed, Duration::from_secs(120));
    assert!(status.success(), "replay: {status}");
    es.refresh(&archive).await;
    let total = (LINES + 200) as u64;
    assert_eq!(es.count(&primary).await, total, "primary: every line once");
    assert_eq!(
        es.count(&archive).await,
        total,
        "archive after replay: written {total}, held and delivered {held}, spilled and replayed {spilled}, plus 200 after"
    );
    eprintln!(
        "spill: written {total}; primary {total}; archive held and delivered {held}, spilled {spilled} (replayed), 200 after recovery; lost 0, duplicated 0"
    );
    let messages: std::collections::HashSet<String> = es
        .search_all(&archive, 5000)
        .await
        .iter()
        .map(|h| h["_source"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages.len() as u64, total, "no line twice, none missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_a_blocked_output_holds_the_pipeline_and_nothing_is_lost() {
    let Some(svc) = services() else { return };
    let dir = temp_dir();
    let (primary, archive) = (unique("block-primary"), unique("block-archive"));
    let log = dir.path().join("access_log");
    write_lines(&log, lines());
    let proxy = Proxy::start(upstream(&svc.es)).await;
    proxy.set_up(false);
    let pipeline = pipeline(
        dir.path(),
        &log,
        &svc.es,
        (&primary, &archive),
        &format!("127.0.0.1:{}", proxy.port),
        "",
    );
    let state = dir.path().join("state");
    let mut child = spawn_run(
        &pipeline,
        &state,
        &["--metrics-address", "off"],
        Stdio::null(),
    );
    let es = Es::new(&svc.es);
    // Wait until the primary stops growing: the pipeline is held.
    let held_at = eventually(Duration::from_secs(60), "the pipeline waits", || async {
        let a = es.count(&primary).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b = es.count(&primary).await;
        (a == b).then_some(b)
    })
    .await;
    assert!(
        held_at < LINES as u64,
        "with block the primary waits for the archive: {held_at} of {LINES}"
    );
    proxy.set_up(true);
    eventually(
        Duration::from_secs(120),
        "both indices complete",
        || async {
            (es.count(&primary).await >= LINES as u64 && es.count(&archive).await >= LINES as u64)
                .then_some(())
        },
    )
    .await;
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_eq!(es.count(&primary).await, LINES as u64);
    assert_eq!(es.count(&archive).await, LINES as u64);
    assert!(
        !state.join("dead-letter/two.ndjson").exists(),
        "nothing dead-lettered"
    );
}
