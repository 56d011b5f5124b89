//! The observability endpoint (default `127.0.0.1:9600`, like Logstash's
//! monitoring API): Prometheus `/metrics` and `/health` (200 when every
//! stage runs, 503 naming the failing or held-back stages otherwise).
//!
//! Stages record through the `metrics` facade; names are `logpipe_*` with
//! `pipeline` and `stage` labels.

pub mod health;
pub mod heartbeat;
pub mod tap;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::telemetry::Throttle;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the metrics recorder (once per process).
pub fn install() -> Option<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Some(handle);
    }
    let buckets = [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    // Batch sizes are counts of events, not seconds.
    let events = [
        1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    ];
    let recorder = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .ok()?
        .set_buckets_for_metric(Matcher::Full("logpipe_batch_events".into()), &events)
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE.get();
    }
    let _ = HANDLE.set(handle);
    HANDLE.get()
}

/// At most this many connections are served at once; more are answered 503
/// and closed at once, so idle or slow clients cannot take the file
/// descriptors the pipelines need.
const MAX_CONNECTIONS: usize = 64;
/// A request's head must arrive within this long, and a kept-alive
/// connection may sit idle this long between requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head accepted.
const MAX_HEAD: usize = 8192;

/// Serves `/metrics` and `/health` on `addr` until the process ends. A port
/// that is taken is logged, not fatal: the pipelines matter more.
pub async fn serve(addr: SocketAddr) {
    let Some(handle) = install() else {
        tracing::warn!("Cannot install the metrics recorder; no metrics endpoint.");
        return;
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "Cannot listen for /metrics and /health; running without them.");
            return;
        }
    };
    tracing::info!(%addr, max_connections = MAX_CONNECTIONS, "Serving /metrics and /health.");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut accept_warning = Throttle::warnings();
    let mut busy_warning = Throttle::warnings();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: the pending
                // connection stays queued, so accepting again at once would
                // spin. Wait for descriptors to come back.
                if let Some(suppressed) = accept_warning.ready() {
                    tracing::warn!(%addr, error = %e, suppressed, "Cannot accept a monitoring connection; pausing.");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if let Some(suppressed) = busy_warning.ready() {
                tracing::warn!(%addr, max_connections = MAX_CONNECTIONS, suppressed, "Too many monitoring connections; answering 503 to new ones.");
            }
            // Best effort and never blocking: the socket buffer is empty.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _slot = slot;
            connection(stream, &handle).await;
        });
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 29\r\nconnection: close\r\n\r\ntoo many monitoring clients\r\n";

/// Answers every request of one connection (HTTP/1.1 keep-alive, pipelined
/// requests included) until the client closes, asks to close, sends
/// something this server does not take, or stays silent too long.
async fn connection(mut stream: tokio::net::TcpStream, handle: &PrometheusHandle) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let head_end = loop {
            if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break end + 4;
            }
            if buf.len() >= MAX_HEAD {
                let _ = write_response(
                    &mut stream,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    "request head too large\n",
                    false,
                )
                .await;
                return;
            }
            let mut chunk = [0u8; 1024];
            match tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let request = Request::parse(&buf[..head_end]);
        buf.drain(..head_end);
        if request.method == "GET" && request.path.split('?').next() == Some("/tap") {
            // A tap streams until its reader goes away; the connection ends
            // with it.
            match tap::Query::parse(&request.path) {
                Ok(query) => {
                    let _ = tap::stream(&mut stream, query).await;
                }
                Err(why) => {
                    let _ = write_response(
                        &mut stream,
                        "400 Bad Request",
                        "text/plain",
                        &format!("{why}\n"),
                        false,
                    )
                    .await;
                }
            }
            let _ = stream.shutdown().await;
            return;
        }
        let (status, content_type, body) = respond(&request, handle);
        // A body would have to be read and skipped; no endpoint takes one,
        // so the connection ends after this answer instead.
        let keep_alive = request.keep_alive && !request.has_body;
        if write_response(&mut stream, status, content_type, &body, keep_alive)
            .await
            .is_err()
            || !keep_alive
        {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn write_response(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    keep_alive: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.as_bytes());
    tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The parts of a request head this server looks at.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    has_body: bool,
}

impl Request {
    fn parse(head: &[u8]) -> Request {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let http10 = first.next() == Some("HTTP/1.0");
        let (mut close, mut keep, mut has_body) = (false, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (
                name.trim().to_ascii_lowercase(),
                value.trim().to_ascii_lowercase(),
            );
            match name.as_str() {
                "connection" => {
                    close |= value.split(',').any(|v| v.trim() == "close");
                    keep |= value.split(',').any(|v| v.trim() == "keep-alive");
                }
                "content-length" => has_body |= value != "0",
                "transfer-encoding" => has_body = true,
                _ => {}
            }
        }
        Request {
            method,
            path,
            keep_alive: !close && (!http10 || keep),
            has_body,
        }
    }
}

fn respond(request: &Request, handle: &PrometheusHandle) -> (&'static str, &'static str, String) {
    let (method, path) = (request.method.as_str(), request.path.as_str());
    if method != "GET" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => {
            handle.run_upkeep();
            ("200 OK", "text/plain; version=0.0.4", handle.render())
        }
        "/health" => {
            let (healthy, body) = health::report();
            let status = if healthy {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", format!("{body}\n"))
        }
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /health or /tap?pipeline=NAME\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_say_whether_the_connection_stays_open() {
        let r = Request::parse(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/health"));
        assert!(r.keep_alive && !r.has_body);
        assert!(!Request::parse(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!Request::parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(Request::parse(b"GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive);
        assert!(Request::parse(b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\n").has_body);
    }

    #[tokio::test]
    async fn kept_alive_and_pipelined_requests_are_all_answered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        tokio::spawn(serve(addr));
        let mut stream = loop {
            if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // Two in one write (pipelined), then a third that closes.
        stream
            .write_all(b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
            .await
            .unwrap()
            .unwrap();
        let statuses: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("HTTP/1.1 "))
            .collect();
        assert_eq!(statuses.len(), 3, "{text}");
        assert!(statuses[1].contains("404"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
    }
}
