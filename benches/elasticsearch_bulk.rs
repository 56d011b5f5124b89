//! Serialize + bulk throughput of the Elasticsearch output against a null
//! `_bulk` endpoint in this process (answers 201 for every item), measured
//! on logpipe's own CPU only.
//!
//! Three kinds of threads: a generator (`gen`) building httpd-like events,
//! the null server (`null-es`), and the output's single runtime thread
//! (`es-out`). The CPU of `es-out` — read from `/proc/self/task/*/stat` — is
//! logpipe's: batching, serializing, the HTTP client, response parsing,
//! acknowledgements. Run: `cargo bench --bench elasticsearch_bulk [-- N]`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use logpipe::dead_letter::DeadLetters;
use logpipe::event::{Batch, Event};
use logpipe::output::OutputSpec;
use logpipe::shutdown::{RunCx, Shutdown};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The allocator the logpipe binary runs with, so the figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let addr = null_server();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n[[output]]\ntype = \"elasticsearch\"\nhosts = \"{addr}\"\nindex = \"httpd_access-%{{+YYYY.MM.dd}}\"\nbatch_events = 1000\nrequest_concurrency = 2\n"
        ),
    )
    .unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_: &str| None);
    let OutputSpec::Elasticsearch(es) = loaded.pipelines[0].outputs[0].spec.clone() else {
        panic!("not elasticsearch");
    };
    let counters = Arc::clone(&es.counters);
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(8);

    let gen = std::thread::Builder::new()
        .name("gen".into())
        .spawn(move || {
            let mut i = 0usize;
            while i < n {
                let batch: Vec<Event> = (i..(i + 500).min(n)).map(event).collect();
                i += batch.len();
                if tx
                    .blocking_send(Batch::new(batch, logpipe::AckToken::untracked()))
                    .is_err()
                {
                    return;
                }
            }
        })
        .unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let out = std::thread::Builder::new()
        .name("es-out".into())
        .spawn(move || {
            let cx = RunCx {
                pipeline: Arc::from("bench"),
                shutdown: Shutdown::default(),
                state_dir: std::env::temp_dir(),
                books: logpipe::accounting::Books::detached("test"),
            };
            let dl = DeadLetters::new(
                "bench",
                std::env::temp_dir().join("bench-dl.ndjson"),
                1 << 20,
                5,
            );
            runtime.block_on(es.run(rx, cx, dl)).unwrap();
            thread_cpu_seconds()
        })
        .unwrap();
    let out_cpu = out.join().unwrap();
    let wall = start.elapsed().as_secs_f64();
    gen.join().unwrap();
    let indexed = counters.snapshot().indexed;
    assert_eq!(indexed, n as u64, "every event indexed");
    let rss_kib = peak_rss_kib();
    println!("documents:                 {n}");
    println!(
        "wall time:                 {wall:.2} s ({:.0} docs/s)",
        n as f64 / wall
    );
    println!("logpipe output CPU:        {out_cpu:.2} s (thread es-out)");
    println!("docs/s per core:           {:.0}", n as f64 / out_cpu);
    println!(
        "CPU s per million docs:    {:.3}",
        out_cpu / (n as f64 / 1e6)
    );
    println!(
        "peak RSS (whole process):  {:.1} MiB",
        rss_kib as f64 / 1024.0
    );
    println!(
        "null server bulk requests: {}",
        REQUESTS.load(Ordering::Relaxed)
    );
}

/// A line of the access log, as the httpd pipeline makes it.
fn event(i: usize) -> Event {
    let mut e = Event::default();
    let f = &mut e.fields;
    f.insert("@timestamp".into(), json!("2026-11-25T10:00:00.123Z"));
    f.insert("message".into(), json!(format!("192.0.2.{} - - [25/Nov/2026:10:00:00 +0000] \"GET /item/{i}?q=search HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"", i % 250, i % 9000)));
    f.insert(
        "source".into(),
        json!({"ip": format!("192.0.2.{}", i % 250)}),
    );
    f.insert("http".into(), json!({"request": {"method": "GET"}, "version": "1.1", "response": {"status_code": 200, "body": {"bytes": i % 9000}}}));
    f.insert(
        "url".into(),
        json!({"original": format!("/item/{i}?q=search")}),
    );
    f.insert(
        "user_agent".into(),
        json!({"original": "Mozilla/5.0 (X11; Linux x86_64)"}),
    );
    f.insert("host".into(), json!({"name": "web-01"}));
    f.insert(
        "log".into(),
        json!({"file": {"path": "/var/log/httpd/access_log"}, "offset": i * 180}),
    );
    f.insert("tags".into(), json!(["httpd_access"]));
    e.metadata
        .insert("_id".into(), json!(format!("{:032x}", i)));
    e
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// An HTTP/1.1 server on its own thread that answers `_bulk` with one
/// `201` item per action line.
fn null_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::Builder::new()
        .name("null-es".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (mut s, _) = listener.accept().await.unwrap();
                    // Without it, Nagle plus delayed ACKs stall every
                    // response by tens of milliseconds: a wall-clock artifact.
                    s.set_nodelay(true).unwrap();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = vec![0u8; 1 << 16];
                        loop {
                            let head_end = loop {
                                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                    break i + 4;
                                }
                                match s.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                                }
                            };
                            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            buf.drain(..head_end);
                            while buf.len() < len {
                                match s.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                                }
                            }
                            let items = memchr::memchr_iter(b'\n', &buf[..len]).count() / 2;
                            buf.drain(..len);
                            REQUESTS.fetch_add(1, Ordering::Relaxed);
                            let item = r#"{"create":{"status":201}}"#;
                            let mut body = String::with_capacity(40 + items * (item.len() + 1));
                            body.push_str(r#"{"took":1,"errors":false,"items":["#);
                            for k in 0..items {
                                if k > 0 {
                                    body.push(',');
                                }
                                body.push_str(item);
                            }
                            body.push_str("]}");
                            let response = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                            if s.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        })
        .unwrap();
    addr
}

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
