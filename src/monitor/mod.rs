//! The observability endpoint (default `127.0.0.1:9600`, like Logstash's
//! monitoring API): Prometheus `/metrics` and `/health` (200 when every
//! stage runs, 503 naming the failing or held-back stages otherwise).
//!
//! Stages record through the `metrics` facade; names are `logpipe_*` with
//! `pipeline` and `stage` labels.

pub mod health;

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the metrics recorder (once per process).
pub fn install() -> Option<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Some(handle);
    }
    let buckets = [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let recorder = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE.get();
    }
    let _ = HANDLE.set(handle);
    HANDLE.get()
}

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
    tracing::info!(%addr, "Serving /metrics and /health.");
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let (status, content_type, body) = respond(&head, &handle);
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

fn respond(head: &[u8], handle: &PrometheusHandle) -> (&'static str, &'static str, String) {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
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
            "try /metrics or /health\n".into(),
        ),
    }
}
