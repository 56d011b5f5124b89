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

/// A file input of [`LINES`] lines and two Elasticsearch outputs:
/// `primary` straight to the server, `archive` through a proxy that is
/// down, with `archive_settings`; the daemon running with its metrics on
/// `metrics`.
struct TwoOutputs {
    svc: Services,
    dir: tempfile::TempDir,
    log: std::path::PathBuf,
    state: std::path::PathBuf,
    primary: String,
    archive: String,
    proxy: Proxy,
    child: std::process::Child,
}

impl TwoOutputs {
    async fn start(
        svc: Services,
        name: &str,
        archive_settings: impl FnOnce(&std::path::Path) -> String,
        metrics: &str,
    ) -> TwoOutputs {
        let dir = temp_dir();
        let (primary, archive) = (
            unique(&format!("{name}-primary")),
            unique(&format!("{name}-archive")),
        );
        let log = dir.path().join("access_log");
        write_lines(&log, lines());
        let proxy = Proxy::start(upstream(&svc.es)).await;
        proxy.set_up(false);
        let pipeline = dir.path().join("two.toml");
        std::fs::write(
            &pipeline,
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
hosts = "127.0.0.1:{port}"
index = "{archive}"
batch_wait = "100ms"
probe_interval = "1s"
# What the archive can hold while down (a request in flight, one being
# filled, its channel): about 400 events, well under the 3000 written.
batch_events = 100
max_in_flight = 1
{settings}
"#,
                log = log.display(),
                es = svc.es,
                port = proxy.port,
                settings = archive_settings(dir.path()),
            ),
        )
        .unwrap();
        let state = dir.path().join("state");
        let child = spawn_run(
            &pipeline,
            &state,
            &["--metrics-address", metrics],
            Stdio::null(),
        );
        TwoOutputs {
            svc,
            dir,
            log,
            state,
            primary,
            archive,
            proxy,
            child,
        }
    }

    /// SIGTERM; the daemon must exit 0 (everything delivered).
    fn stop(&mut self) {
        sigterm(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(30));
        assert!(status.success(), "exit after SIGTERM: {status}");
    }
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
    metric_sample(text, name, labels)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_output_spills_and_the_other_carries_on() {
    let Some(svc) = services() else { return };
    let addr = format!("127.0.0.1:{}", free_port());
    let mut run = TwoOutputs::start(
        svc,
        "spill",
        |dir| {
            format!(
                "when_blocked = \"spill\"\nblocked_timeout = \"2s\"\ndead_letter_path = \"{}\"",
                dir.join("archive-dead-letters.ndjson").display()
            )
        },
        &addr,
    )
    .await;
    let dead_letters = run.dir.path().join("archive-dead-letters.ndjson");
    let es = Es::new(&run.svc.es);
    let (primary, archive, state) = (run.primary.clone(), run.archive.clone(), run.state.clone());

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
        // A sleep, not a wait: settled means unchanged for 500 ms; no counter
        // says the fan-out spilled its last batch.
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
    run.proxy.set_up(true);
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
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&run.log)
            .unwrap();
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
    run.stop();

    // Replaying the dead letters into the archive makes it whole: every
    // line once, the spilled ones under the ids they were first sent with.
    let replay = run.dir.path().join("replay.toml");
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
            run.svc.es
        ),
    )
    .unwrap();
    let mut replayed = spawn_run(
        &replay,
        &run.dir.path().join("replay-state"),
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
    let mut run = TwoOutputs::start(svc, "block", |_| String::new(), "off").await;
    let es = Es::new(&run.svc.es);
    let (primary, archive, state) = (run.primary.clone(), run.archive.clone(), run.state.clone());
    // Wait until the primary stops growing: the pipeline is held.
    let held_at = eventually(Duration::from_secs(60), "the pipeline waits", || async {
        let a = es.count(&primary).await;
        // A sleep, not a wait: held means no growth for 3 s (a negative check).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b = es.count(&primary).await;
        (a == b).then_some(b)
    })
    .await;
    assert!(
        held_at < LINES as u64,
        "with block the primary waits for the archive: {held_at} of {LINES}"
    );
    run.proxy.set_up(true);
    eventually(
        Duration::from_secs(120),
        "both indices complete",
        || async {
            (es.count(&primary).await >= LINES as u64 && es.count(&archive).await >= LINES as u64)
                .then_some(())
        },
    )
    .await;
    run.stop();
    assert_eq!(es.count(&primary).await, LINES as u64);
    assert_eq!(es.count(&archive).await, LINES as u64);
    assert!(
        !state.join("dead-letter/two.ndjson").exists(),
        "nothing dead-lettered"
    );
}
