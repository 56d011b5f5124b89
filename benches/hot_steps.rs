//! Each hot step of the route on its own, with the allocations it makes per
//! event counted by a counting allocator around the binary's own
//! (mimalloc): line → event (file input), Kafka encode and decode, the grok
//! parse of a combined line, the date filter, the bulk encode, and the whole
//! shipped access filter chain.
//!
//! `cargo bench --bench hot_steps` prints, before criterion's timings, one
//! line per step: allocations and bytes allocated per event. Short runs:
//! `cargo bench --bench hot_steps -- --warm-up-time 1 --measurement-time 3`.
//! Aims (issue "Speed"): ≤ 10 allocations per event on the ship half (line
//! → event → Kafka encode), ≤ 25 through the whole index half.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logpipe::filter::FilterSpec;
use logpipe::input::file::line_event::LineOrigin;
use logpipe::input::file::reader::Line;
use logpipe::input::InputSpec;
use logpipe::kafka::codec;
use logpipe::output::elasticsearch::bulk::{Action, Body};
use logpipe::Event;

/// mimalloc, counting every allocation (and reallocation) and its bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Lines per measured round (`common::lines()`).
const LINES: usize = 1000;

/// The pipeline of `text`, loaded as `logpipe run` loads it.
fn pipeline(text: &str) -> logpipe::pipeline::Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.pipelines.into_iter().next().unwrap()
}

fn shipped_access() -> logpipe::pipeline::Pipeline {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/httpd-access.toml");
    pipeline(&std::fs::read_to_string(path).unwrap())
}

const FILE_INPUT: &str = "[[input]]\ntype = \"file\"\npaths = [\"/var/log/httpd/access_log\"]\ntags = [\"httpd_access\"]\n";

/// The events the file input makes of `lines` (`common::lines()`), each
/// line's text made from the read buffer as the reader makes it.
fn line_events(input: &logpipe::input::file::FileInput, lines: &[String]) -> Vec<Event> {
    let read_time = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00.000Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let origin = LineOrigin::new(
        input,
        "0123456789abcdef",
        None,
        "/var/log/httpd/access_log",
        read_time,
    );
    let mut offset = 0u64;
    lines
        .iter()
        .map(|text| {
            let end = offset + text.len() as u64 + 1;
            let line = Line {
                offset,
                end,
                text: logpipe::event::Str::new(text),
                truncated: false,
                invalid_utf8: false,
                multiline: false,
            };
            offset = end;
            origin.event(line)
        })
        .collect()
}

fn file_input() -> logpipe::input::file::FileInput {
    let p = pipeline(&format!(
        "name = \"b\"\n{FILE_INPUT}[[output]]\ntype = \"null\"\n"
    ));
    match p.inputs.into_iter().next() {
        Some(InputSpec::File(f)) => *f,
        _ => unreachable!("a file input"),
    }
}

fn apply(filters: &[FilterSpec], events: &mut Vec<Event>) {
    logpipe::filter::apply_all(filters, events);
}

/// What the index half's consumer makes of a message.
fn decode(payload: &[u8], offset: i64) -> Event {
    let origin = codec::Origin {
        topic: "httpd",
        partition: 0,
        offset,
        key: None,
        timestamp: None,
    };
    codec::decode(Some(payload), &origin, logpipe::kafka::Codec::Json, false)
}

/// Allocations and bytes per event of `step` over `events` events, on its
/// second run (the first fills caches and compiles lazily built regexes).
fn count<T>(events: usize, step: impl Fn() -> T) -> (f64, f64) {
    drop(step());
    let (a0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let out = step();
    let (a1, b1) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    drop(out);
    let n = events as f64;
    ((a1 - a0) as f64 / n, (b1 - b0) as f64 / n)
}

fn print_allocations() {
    let input = file_input();
    let parse = pipeline(&format!(
        "name = \"b\"\n{FILE_INPUT}[[filter]]\ntype = \"grok\"\nmatch = {{ message = '^%{{HTTPD_COMBINEDLOG}}' }}\n[[output]]\ntype = \"null\"\n"
    ));
    let date = pipeline(&format!(
        "name = \"b\"\n{FILE_INPUT}[[filter]]\ntype = \"date\"\nfield = \"timestamp\"\nformats = [\"dd/MMM/yyyy:HH:mm:ss Z\"]\n[[output]]\ntype = \"null\"\n"
    ));
    let access = shipped_access();
    let lines = common::lines();
    let events = line_events(&input, &lines);
    let mut encoded = Vec::new();
    for e in &events {
        let mut body = Vec::new();
        codec::encode_into(e, &mut body).unwrap();
        encoded.push(body);
    }
    let mut parsed = events.clone();
    apply(&parse.filters, &mut parsed);
    let mut rows = Vec::new();
    rows.push((
        "line → event (file input)",
        count(LINES, || line_events(&input, &lines)),
    ));
    rows.push((
        "Kafka encode",
        count(LINES, || {
            let mut out = Vec::with_capacity(1 << 20);
            for e in &events {
                codec::encode_into(e, &mut out).unwrap();
            }
            out
        }),
    ));
    rows.push((
        "Kafka decode",
        count(LINES, || {
            encoded
                .iter()
                .enumerate()
                .map(|(i, b)| decode(b, i as i64))
                .collect::<Vec<_>>()
        }),
    ));
    rows.push((
        "grok HTTPD_COMBINEDLOG",
        count(LINES, || {
            let mut e = events.clone();
            apply(&parse.filters, &mut e);
            e
        }),
    ));
    rows.push((
        "date",
        count(LINES, || {
            let mut e = parsed.clone();
            apply(&date.filters, &mut e);
            e
        }),
    ));
    rows.push((
        "bulk encode",
        count(LINES, || {
            let mut body = Body::default();
            for e in &parsed {
                body.push(Action::Create, "httpd_access-2026.11.25", e.id(), &e.fields)
                    .unwrap();
            }
            body
        }),
    ));
    rows.push((
        "shipped access filters (all)",
        count(LINES, || {
            let mut e = events.clone();
            apply(&access.filters, &mut e);
            e
        }),
    ));
    // The clones inside two rows are counted with them: subtract a clone.
    let (clone_allocs, clone_bytes) = count(LINES, || events.clone());
    let (parsed_allocs, parsed_bytes) = count(LINES, || parsed.clone());
    println!("allocations per event (mimalloc, counted):");
    for (name, (allocs, bytes)) in rows {
        let (allocs, bytes) = match name {
            "grok HTTPD_COMBINEDLOG" | "shipped access filters (all)" => {
                (allocs - clone_allocs, bytes - clone_bytes)
            }
            "date" => (allocs - parsed_allocs, bytes - parsed_bytes),
            _ => (allocs, bytes),
        };
        println!("  {name:<30} {allocs:>7.1} allocations {bytes:>9.0} bytes");
    }
}

fn bench(c: &mut Criterion) {
    print_allocations();
    let input = file_input();
    let lines = common::lines();
    let events = line_events(&input, &lines);
    let parse = pipeline(&format!(
        "name = \"b\"\n{FILE_INPUT}[[filter]]\ntype = \"grok\"\nmatch = {{ message = '^%{{HTTPD_COMBINEDLOG}}' }}\n[[output]]\ntype = \"null\"\n"
    ));
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            codec::encode_into(e, &mut b).unwrap();
            b
        })
        .collect();
    let mut group = c.benchmark_group("hot_steps");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("line_to_event", |b| b.iter(|| line_events(&input, &lines)));
    group.bench_function("kafka_encode", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for e in &events {
                codec::encode_into(e, &mut out).unwrap();
            }
        })
    });
    // What the writer replaced: the same message through serde_json's
    // serializer (the codec's `KafkaMessage`), for the comparison.
    group.bench_function("kafka_encode_serde", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for e in &events {
                serde_json::to_writer(&mut out, &logpipe::event::json::KafkaMessage(e)).unwrap();
            }
        })
    });
    group.bench_function("kafka_decode", |b| {
        b.iter(|| {
            encoded
                .iter()
                .enumerate()
                .map(|(i, p)| decode(p, i as i64))
                .collect::<Vec<_>>()
        })
    });
    let date = pipeline(&format!(
        "name = \"b\"\n{FILE_INPUT}[[filter]]\ntype = \"date\"\nfield = \"timestamp\"\nformats = [\"dd/MMM/yyyy:HH:mm:ss Z\"]\n[[output]]\ntype = \"null\"\n"
    ));
    let mut parsed = events.clone();
    apply(&parse.filters, &mut parsed);
    group.bench_function("date", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut e| {
                apply(&date.filters, &mut e);
                e
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("bulk_encode", |b| {
        let mut body = Body::default();
        b.iter(|| {
            body = Body::reuse(
                std::mem::take(&mut body.bytes),
                std::mem::take(&mut body.starts),
            );
            for e in &parsed {
                body.push(Action::Create, "httpd_access-2026.11.25", e.id(), &e.fields)
                    .unwrap();
            }
        })
    });
    group.bench_function("bulk_encode_serde", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for e in &parsed {
                serde_json::to_writer(&mut out, &e.fields).unwrap();
            }
        })
    });
    group.bench_function("grok_combined", |b| {
        b.iter_batched(
            || events.clone(),
            |mut e| {
                apply(&parse.filters, &mut e);
                e
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
