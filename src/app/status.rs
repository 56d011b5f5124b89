//! `logpipe status`: what the checkpoints say (per file: size, offset,
//! bytes behind) and, when the daemon answers, its health, consumer lag and
//! output counters. Works with what it can read when the daemon is down.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Daemon;
use crate::cli::{DaemonArgs, EXIT_CONFIG};
use crate::input::file::registry::{Peek, Registry};

pub async fn print(args: DaemonArgs) -> ExitCode {
    let Ok(daemon) = Daemon::resolve(args) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    println!("State directory: {}", daemon.state_dir.display());
    print_checkpoints(&daemon.state_dir);
    match daemon.metrics_address {
        Ok(Some(addr)) => print_daemon(&format!("http://{addr}")).await,
        Ok(None) => println!("\nDaemon: metrics endpoint switched off"),
        Err(e) => println!("\nDaemon: {e}"),
    }
    ExitCode::SUCCESS
}

fn registries(state_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(pipelines) = std::fs::read_dir(state_dir.join("checkpoints")) else {
        return out;
    };
    for pipeline in pipelines.flatten() {
        let name = pipeline.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(pipeline.path()) else {
            continue;
        };
        for file in files.flatten() {
            if file.path().extension().is_some_and(|e| e == "json") {
                out.push((name.clone(), file.path()));
            }
        }
    }
    out.sort();
    out
}

fn print_checkpoints(state_dir: &Path) {
    let found = registries(state_dir);
    if found.is_empty() {
        println!("\nFiles: no checkpoints yet");
        return;
    }
    println!("\nFiles (from the checkpoints):");
    println!(
        "  {:<20} {:<50} {:>14} {:>14} {:>14}",
        "PIPELINE", "PATH", "SIZE", "OFFSET", "BEHIND"
    );
    for (pipeline, path) in found {
        match Registry::new(path.clone()).peek() {
            Peek::Ok(entries) => {
                for e in entries {
                    let now = std::fs::metadata(&e.path)
                        .ok()
                        .filter(|m| m.ino() == e.ino && m.dev() == e.dev);
                    let (size, behind) = match now {
                        Some(m) => (
                            m.len().to_string(),
                            m.len().saturating_sub(e.offset).to_string(),
                        ),
                        None => ("rotated/gone".to_owned(), "-".to_owned()),
                    };
                    println!(
                        "  {:<20} {:<50} {:>14} {:>14} {:>14}",
                        pipeline,
                        e.path.display(),
                        size,
                        e.offset,
                        behind
                    );
                }
            }
            Peek::Fresh => {}
            Peek::Bad(reason) => {
                println!("  {pipeline}: {}: unreadable: {reason}", path.display())
            }
        }
    }
}

async fn print_daemon(base: &str) {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    let health = client.get(format!("{base}/health")).send().await;
    let Ok(health) = health else {
        println!("\nDaemon: not reachable at {base} (not running, or metrics_address differs)");
        return;
    };
    let healthy = health.status().is_success();
    let body: serde_json::Value = health.json().await.unwrap_or_default();
    println!(
        "\nDaemon at {base}: {}",
        if healthy { "healthy" } else { "FAILING" }
    );
    if let Some(failing) = body["failing"].as_array().filter(|f| !f.is_empty()) {
        for stage in body["stages"].as_array().into_iter().flatten() {
            if stage["status"] != "running" {
                println!(
                    "  {} {}: {} ({})",
                    stage["pipeline"].as_str().unwrap_or(""),
                    stage["stage"].as_str().unwrap_or(""),
                    stage["status"].as_str().unwrap_or(""),
                    stage["reason"].as_str().unwrap_or("")
                );
            }
        }
        let _ = failing;
    }
    for stage in body["stages"].as_array().into_iter().flatten() {
        let brokers = &stage["brokers"];
        if let (Some(up), Some(total)) = (brokers["up"].as_u64(), brokers["total"].as_u64()) {
            println!(
                "  {} {}: {up}/{total} Kafka brokers up",
                stage["pipeline"].as_str().unwrap_or(""),
                stage["stage"].as_str().unwrap_or(""),
            );
        }
    }
    let Ok(metrics) = client.get(format!("{base}/metrics")).send().await else {
        return;
    };
    let text = metrics.text().await.unwrap_or_default();
    let samples = parse(&text);
    let lag: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "logpipe_kafka_consumer_lag")
        .collect();
    if !lag.is_empty() {
        println!("\nConsumer lag:");
        for s in lag {
            println!(
                "  {:<20} {:<30} partition {:>3}: {}",
                s.label("pipeline"),
                s.label("topic"),
                s.label("partition"),
                number(s.value)
            );
        }
    }
    println!("\nStages (events since start):");
    for s in samples
        .iter()
        .filter(|s| s.name == "logpipe_events_out_total")
    {
        let failed: f64 = samples
            .iter()
            .filter(|f| {
                f.name == "logpipe_dead_letters_total"
                    && f.label("pipeline") == s.label("pipeline")
                    && f.label("stage") == s.label("stage")
            })
            .map(|f| f.value)
            .sum();
        println!(
            "  {:<20} {:<22} out {:>12}  dead-lettered {:>8}",
            s.label("pipeline"),
            s.label("stage"),
            number(s.value),
            number(failed)
        );
    }
}

/// A metric value as a person reads it: whole numbers without a fraction,
/// and never `-0` (an empty `f64` sum is negative zero).
pub(crate) fn number(value: f64) -> String {
    let value = if value == 0.0 { 0.0 } else { value };
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Sample {
    pub(crate) fn label(&self, key: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text format (enough of it for our own metrics).
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (head, value) = line.rsplit_once(' ')?;
            let value = value.parse().ok()?;
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest
                        .trim_end_matches('}')
                        .split("\",")
                        .filter_map(|pair| {
                            let (k, v) = pair.split_once('=')?;
                            Some((k.to_owned(), v.trim_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (head.to_owned(), Vec::new()),
            };
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_without_negative_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(number(empty), "0");
        assert_eq!(number(42.0), "42");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(0.5), "0.5");
    }

    #[test]
    fn prometheus_lines_parse_into_samples() {
        let s = parse("# TYPE x counter\nlogpipe_events_out_total{pipeline=\"a\",stage=\"output.stdout\"} 42\nup 1\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label("stage"), "output.stdout");
        assert_eq!(s[0].value, 42.0);
        assert_eq!(s[1].name, "up");
    }
}
