//! Benchmark of the file input (a benchmark, not a test: run it through
//! `scripts/bench-file-input.sh`, which also measures CPU time and peak RSS).
//!
//! ```text
//! bench_file_input gen PATH MB [SEED]   write a seeded httpd access log
//! bench_file_input split PATH           read + split into lines (LineReader)
//! bench_file_input tail PATH            the whole input → null sink (events
//!                                       built, batches acknowledged)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logpipe::input::file::reader::{LineReader, Stop};
use logpipe::input::file::{FileInput, OnCorruptCheckpoint, StartPosition};
use logpipe::shutdown::{RunCx, Shutdown};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "gen" => {
            let mb: u64 = arg(2).parse().unwrap_or(512);
            let seed: u64 = arg(3).parse().unwrap_or(42);
            generate(Path::new(arg(1)), mb << 20, seed);
        }
        "split" => split(Path::new(arg(1))),
        "tail" => tail(PathBuf::from(arg(1))),
        _ => eprintln!("usage: bench_file_input gen PATH MB [SEED] | split PATH | tail PATH"),
    }
}

/// Apache combined-format lines with realistic variety, from a seed.
fn generate(path: &Path, bytes: u64, seed: u64) {
    const PATHS: &[&str] = &[
        "/",
        "/index.html",
        "/static/app.js",
        "/static/style.css",
        "/api/v1/orders?page=2&size=50",
        "/images/logo.png",
        "/login",
        "/search?q=rotating+log+files",
        "/wp-admin/setup-config.php",
    ];
    const AGENTS: &[&str] = &[
        "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
        "curl/8.5.0",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
    ];
    const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "HEAD"];
    const STATUS: &[u16] = &[200, 200, 200, 200, 304, 301, 404, 500];
    let mut rng = fastrand::Rng::with_seed(seed);
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut second = 0u64;
    while written < bytes {
        second += u64::from(rng.u8(..4) == 0);
        let line = format!(
            "{}.{}.{}.{} - - [25/Nov/2026:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"https://example.com{}\" \"{}\"\n",
            rng.u8(1..224),
            rng.u8(..),
            rng.u8(..),
            rng.u8(1..255),
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60,
            METHODS[rng.usize(..METHODS.len())],
            PATHS[rng.usize(..PATHS.len())],
            STATUS[rng.usize(..STATUS.len())],
            rng.u32(..200_000),
            PATHS[rng.usize(..PATHS.len())],
            AGENTS[rng.usize(..AGENTS.len())],
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    out.flush().unwrap();
}

fn report(what: &str, lines: u64, bytes: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what}: {lines} lines, {:.0} MB in {secs:.2} s wall: {:.2} M lines/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        lines as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
    );
}

fn split(path: &Path) {
    let size = std::fs::metadata(path).unwrap().len();
    let start = Instant::now();
    let file = std::fs::File::open(path).unwrap();
    let mut reader = LineReader::new(file, 0, 512 * 1024).unwrap();
    let mut lines = Vec::with_capacity(1024);
    let mut count = 0u64;
    loop {
        lines.clear();
        let stop = reader.read_lines(&mut lines, 1024, 1 << 20).unwrap();
        count += lines.len() as u64;
        if stop == Stop::Eof {
            break;
        }
    }
    report("read+split", count, size, start.elapsed());
}

fn tail(path: PathBuf) {
    let size = std::fs::metadata(&path).unwrap().len();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = std::env::temp_dir().join(format!("bench-file-input-{}", std::process::id()));
    let input = FileInput {
        id: "bench".into(),
        patterns: vec![path.to_string_lossy().into_owned()],
        exclude: Vec::new(),
        tags: vec!["httpd_access".into()],
        fields: None,
        start_position: StartPosition::Beginning,
        exit_after_eof: true,
        checkpoint: false,
        on_corrupt_checkpoint: OnCorruptCheckpoint::Beginning,
        follow_symlinks: false,
        max_line_bytes: 512 * 1024,
        batch_events: 1024,
        batch_bytes: 1 << 20,
        scan_interval: Duration::from_secs(1),
        poll_interval: Duration::from_millis(250),
        partial_line_timeout: Duration::from_secs(60),
        close_inactive: Duration::from_secs(300),
        ignore_older: None,
        clean_removed: true,
        max_open_files: 1024,
        multiline: None,
    };
    let cx = RunCx {
        pipeline: Arc::from("bench"),
        shutdown: Shutdown::default(),
        state_dir: state,
        books: logpipe::accounting::Books::detached("test"),
    };
    let start = Instant::now();
    let count = runtime.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<logpipe::Batch>(16);
        let sink = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(batch) = rx.recv().await {
                count += batch.events.len() as u64;
                batch.ack.ack();
            }
            count
        });
        input.run(tx, cx).await.unwrap();
        sink.await.unwrap()
    });
    report("tail → null sink", count, size, start.elapsed());
}
