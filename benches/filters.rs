//! Throughput of the httpd access parse and of the shipped access pipeline's
//! whole filter chain, per line on one core.
//!
//! `cargo bench --bench filters` (short runs: `-- --warm-up-time 1
//! --measurement-time 3`). Criterion reports time per line; lines/s per core
//! is its inverse (the throughput line shows it as elements/s).

mod common;

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logpipe::filter::{self, FilterSpec};
use logpipe::Event;

// The allocator the logpipe binary runs with, so the figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The shipped access pipeline's filters, optionally without `useragent`.
fn access_filters(useragent: bool) -> Vec<FilterSpec> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/httpd-access.toml");
    let mut text = std::fs::read_to_string(path).unwrap();
    if !useragent {
        let filter = "[[filter]]\ntype = \"useragent\"\nif = '[user_agent][original]'\n";
        assert!(text.contains(filter));
        text = text.replace(filter, "");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("httpd-access.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.pipelines.into_iter().next().unwrap().filters
}

/// Just the parse: grok with the built-in combined pattern, then the date.
fn parse_filters() -> Vec<FilterSpec> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        r#"
[[input]]
type = "file"
paths = ["/x"]
[[filter]]
type = "grok"
match = { message = "^%{HTTPD_COMBINEDLOG}" }
[[filter]]
type = "date"
field = "timestamp"
formats = ["dd/MMM/yyyy:HH:mm:ss Z"]
[[output]]
type = "stdout"
"#,
    )
    .unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.pipelines.into_iter().next().unwrap().filters
}

fn events(lines: &[String]) -> Vec<Event> {
    lines
        .iter()
        .map(|line| {
            let mut event = Event::from_message(line.clone());
            event.add_tag("httpd_access");
            event
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = common::lines();
    let mut group = c.benchmark_group("httpd_access");
    group.throughput(Throughput::Elements(lines.len() as u64));
    for (name, filters) in [
        ("parse_grok_and_date", parse_filters()),
        ("preset_chain_without_useragent", access_filters(false)),
        ("preset_chain_with_useragent", access_filters(true)),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || events(&lines),
                |mut events| {
                    filter::apply_all(&filters, &mut events);
                    events
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
