//! A tiny Elasticsearch stand-in for benchmarks: answers every `_bulk`
//! item with success and keeps nothing, so what is measured is logpipe.
//!
//!     cargo run --release --example null_bulk -- 127.0.0.1:9299
//!
//! `GET /` answers like Elasticsearch 8; `GET /_stats/null` returns how many
//! items and bytes it took, for the bench driver to know when a run is done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Stats {
    items: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9299".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("null_bulk listening on {}", listener.local_addr()?);
    let stats = Arc::new(Stats::default());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, Arc::clone(&stats)));
    }
}

async fn serve(mut stream: TcpStream, stats: Arc<Stats>) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut response = Vec::with_capacity(1 << 16);
    loop {
        // Head.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = vec![0u8; (head_end + length - buf.len()).min(1 << 20)];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = &buf[head_end..head_end + length];
        response.clear();
        let json: Vec<u8> = if request_line.contains("_bulk") {
            let lines = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            let items = lines / 2;
            stats.items.fetch_add(items as u64, Ordering::Relaxed);
            stats.bytes.fetch_add(length as u64, Ordering::Relaxed);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut out = Vec::with_capacity(32 + items * 24);
            out.extend_from_slice(b"{\"took\":0,\"errors\":false,\"items\":[");
            for i in 0..items {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"create\":{\"status\":201}}");
            }
            out.extend_from_slice(b"]}");
            out
        } else if request_line.contains("_stats/null") {
            format!(
                "{{\"items\":{},\"bytes\":{},\"requests\":{}}}",
                stats.items.load(Ordering::Relaxed),
                stats.bytes.load(Ordering::Relaxed),
                stats.requests.load(Ordering::Relaxed)
            )
            .into_bytes()
        } else {
            br#"{"name":"null_bulk","version":{"number":"8.15.0","distribution":"elasticsearch"},"tagline":"You Know, for Search"}"#.to_vec()
        };
        response.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                json.len()
            )
            .as_bytes(),
        );
        response.extend_from_slice(&json);
        stream.write_all(&response).await?;
        buf.drain(..head_end + length);
    }
}
