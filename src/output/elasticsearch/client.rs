//! Talking to the cluster: the HTTP client (TLS, auth), the host list with
//! its up/down state and background probe, and one bulk request sent until
//! some host answers it.
//!
//! A host that cannot be reached, times out or answers 502/503/504 is
//! marked down and skipped; a probe per host (`GET /` every
//! `probe_interval`, given `probe_timeout` to answer, by default the request
//! `timeout`) marks it up again. A probe must wait as long as a request may:
//! one that gave up after `probe_interval` never re-admitted a host that
//! answers in 20 s. When every host is down, senders wait for a probe, and
//! every `probe_interval` at the latest one of them sends its request to a
//! host anyway: the request itself is then the probe, so a host that answers
//! requests is never left marked down. An outage still holds the pipeline
//! without hammering the cluster (at most `max_in_flight` requests per
//! `probe_interval`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::concurrency::{self, Controller, Signal};
use super::config::{Auth, Elasticsearch, Password};
use super::response;
use super::stats::Counters;
use crate::retry::Backoff;
use crate::telemetry::Throttle;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} {path}: {message}")]
    Pem {
        what: &'static str,
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the credentials are not a valid HTTP header value")]
    Header,
    #[error("HTTP client: {0}")]
    Build(String),
}

/// The hosts and whether each is up.
#[derive(Debug)]
pub struct Hosts {
    urls: Vec<reqwest::Url>,
    down: Vec<AtomicBool>,
    next: AtomicUsize,
    /// Bumped whenever a host comes back, to wake senders waiting on an outage.
    back: watch::Sender<u64>,
}

impl Hosts {
    pub fn new(urls: Vec<reqwest::Url>) -> Self {
        let down = urls.iter().map(|_| AtomicBool::new(false)).collect();
        Hosts {
            urls,
            down,
            next: AtomicUsize::new(0),
            back: watch::channel(0).0,
        }
    }

    /// The next host that is up, round-robin; `None` when all are down.
    pub fn pick(&self) -> Option<usize> {
        let n = self.urls.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| start.wrapping_add(k) % n)
            .find(|&i| !self.is_down(i))
    }

    /// The next host, round-robin, up or down: for a request sent while
    /// every host is marked down. `None` only without hosts.
    pub fn pick_any(&self) -> Option<usize> {
        let n = self.urls.len();
        (n > 0).then(|| self.next.fetch_add(1, Ordering::Relaxed) % n)
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    pub fn url(&self, i: usize) -> Option<&reqwest::Url> {
        self.urls.get(i)
    }

    pub fn is_down(&self, i: usize) -> bool {
        self.down.get(i).is_some_and(|d| d.load(Ordering::Acquire))
    }

    /// Marks host `i` down; true if it was up.
    pub fn mark_down(&self, i: usize) -> bool {
        self.down
            .get(i)
            .is_some_and(|d| !d.swap(true, Ordering::AcqRel))
    }

    /// Marks host `i` up; true if it was down.
    pub fn mark_up(&self, i: usize) -> bool {
        let was_down = self
            .down
            .get(i)
            .is_some_and(|d| d.swap(false, Ordering::AcqRel));
        if was_down {
            self.back.send_modify(|n| *n = n.wrapping_add(1));
        }
        was_down
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.back.subscribe()
    }
}

/// Warnings that would repeat on every retry, one throttle per cause.
#[derive(Debug)]
struct Warnings {
    request: Mutex<Throttle>,
    items: Mutex<Throttle>,
    outage: Mutex<Throttle>,
    refused: Mutex<Throttle>,
    host_down: Mutex<Throttle>,
}

fn ready(t: &Mutex<Throttle>) -> Option<u64> {
    t.lock().ok().and_then(|mut t| t.ready())
}

/// The client of one output, shared by its in-flight requests.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    pub hosts: Hosts,
    compression: bool,
    pub counters: Arc<Counters>,
    warnings: Warnings,
    pipeline: Arc<str>,
    /// `/health` was told the destination is unreachable.
    degraded: AtomicBool,
    /// How often a host marked down is probed, and how long, while every
    /// host is down, a sender waits before it sends to one anyway.
    probe_interval: Duration,
    /// How long a probe waits for the answer.
    probe_timeout: Duration,
    /// How many requests may be in flight, fed by every answer.
    concurrency: Mutex<Controller>,
    /// The output's label (`id`, else `output.elasticsearch#N`), in metrics.
    output: Arc<str>,
}

/// The stage name in metrics and health.
const STAGE: &str = "output.elasticsearch";

/// How a bulk request ended.
pub enum Sent {
    /// 200: the per-item response body, and how long it took since the
    /// request was sent (for [`Client::answered`]).
    Answered { body: bytes::Bytes, rtt: Duration },
    /// Refused for its content (400, 413): sending it again cannot help, but
    /// its halves may pass; see [`response::split_request`].
    Unfit { status: u16, message: String },
    /// `abort` fired first.
    Aborted,
}

/// Why a bulk request must be sent again.
enum Failure {
    /// The host looks gone: mark it down.
    HostDown(String),
    /// The host answered but cannot take the request now (or at all).
    Refused(String),
}

impl Client {
    pub fn new(es: &Elasticsearch, pipeline: Arc<str>) -> Result<Self, ClientError> {
        Ok(Client {
            http: http_client(es)?,
            hosts: Hosts::new(es.hosts.clone()),
            compression: es.compression,
            counters: Arc::clone(&es.counters),
            warnings: Warnings {
                request: Mutex::new(Throttle::warnings()),
                items: Mutex::new(Throttle::warnings()),
                outage: Mutex::new(Throttle::warnings()),
                refused: Mutex::new(Throttle::warnings()),
                host_down: Mutex::new(Throttle::warnings()),
            },
            pipeline,
            degraded: AtomicBool::new(false),
            probe_interval: es.probe_interval,
            probe_timeout: es.probe_timeout,
            concurrency: Mutex::new(Controller::new(es.concurrency)),
            output: Arc::from(STAGE),
        })
    }

    /// Names the output in its metrics (by default the stage name).
    pub fn for_output(mut self, label: &str) -> Self {
        self.output = Arc::from(label);
        self
    }

    /// How many requests may be in flight now.
    pub fn concurrency_limit(&self) -> usize {
        // A panic while holding the lock cannot happen (the controller is
        // plain arithmetic); if it did, one at a time is safe.
        self.concurrency.lock().map_or(1, |c| c.limit())
    }

    /// A request is sent, or ready and waiting for a slot, with
    /// `in_flight` requests holding one.
    pub fn sending(&self, in_flight: usize) {
        if let Ok(mut c) = self.concurrency.lock() {
            c.sending(in_flight);
        }
    }

    /// Feeds one answer to the concurrency limit; publishes the limit and
    /// the RTT average when the limit moved.
    pub fn answered(&self, rtt: Duration, signal: Signal) {
        let changed = match self.concurrency.lock() {
            Ok(mut c) => c.answered(tokio::time::Instant::now(), rtt, signal),
            Err(_) => false,
        };
        if changed {
            tracing::debug!(
                limit = self.concurrency_limit(),
                ?signal,
                "Bulk request concurrency changed."
            );
            self.export_concurrency();
        }
    }

    /// Publishes the concurrency limit and the RTT average as gauges.
    fn export_concurrency(&self) {
        let Ok((limit, rtt)) = self.concurrency.lock().map(|c| (c.limit(), c.rtt())) else {
            return;
        };
        let labels = [
            ("pipeline", self.pipeline.to_string()),
            ("stage", STAGE.to_owned()),
            ("output", self.output.to_string()),
        ];
        metrics::gauge!("logpipe_es_concurrency_limit", &labels).set(limit as f64);
        if let Some(rtt) = rtt {
            metrics::gauge!("logpipe_es_rtt_seconds", &labels).set(rtt.as_secs_f64());
        }
    }

    /// Tells `/health` that requests fail (events are held).
    fn degrade(&self, reason: &str) {
        self.degraded.store(true, Ordering::Relaxed);
        crate::monitor::health::degraded(&self.pipeline, STAGE, reason);
    }

    /// Tells `/health` that requests succeed again.
    fn recovered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            crate::monitor::health::running(&self.pipeline, STAGE);
        }
    }

    /// Publishes the counters as Prometheus metrics, every second, until
    /// `stop` fires (the output also publishes them once more as it ends,
    /// see [`Client::export_counters`]).
    pub async fn export_metrics(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => self.export_counters(),
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Publishes the counters as Prometheus metrics now.
    pub fn export_counters(&self) {
        let labels = |result: &'static str| {
            [
                ("pipeline", self.pipeline.to_string()),
                ("stage", STAGE.to_owned()),
                ("result", result.to_owned()),
            ]
        };
        let out_labels = [
            ("pipeline", self.pipeline.to_string()),
            ("stage", STAGE.to_owned()),
        ];
        let s = self.counters.snapshot();
        metrics::counter!("logpipe_es_items_total", &labels("indexed")).absolute(s.indexed);
        metrics::counter!("logpipe_es_items_total", &labels("already_indexed"))
            .absolute(s.already_indexed);
        metrics::counter!("logpipe_es_items_total", &labels("dead_lettered"))
            .absolute(s.dead_lettered);
        metrics::counter!("logpipe_es_items_total", &labels("retried")).absolute(s.retried_items);
        metrics::counter!("logpipe_es_failed_requests_total", &out_labels)
            .absolute(s.failed_requests);
        metrics::counter!("logpipe_events_out_total", &out_labels)
            .absolute(s.indexed + s.already_indexed + s.dead_lettered);
        self.export_concurrency();
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Logs that items are retried, at most once per 10 s.
    pub fn warn_items(&self, items: usize, reason: &str) {
        if let Some(suppressed) = ready(&self.warnings.items) {
            tracing::warn!(
                items,
                reason,
                suppressed,
                "Elasticsearch rejected items for now; retrying them."
            );
        }
    }

    /// POSTs `body` (NDJSON, gzipped when configured) to `_bulk` on the next
    /// live host until one answers 200 or refuses the request for its
    /// content; other failures (connection, 429, 5xx, auth) are retried.
    pub async fn bulk(
        &self,
        body: &[u8],
        backoff: &mut Backoff,
        abort: &CancellationToken,
    ) -> Sent {
        let payload = if self.compression {
            match gzip(body) {
                Ok(gz) => bytes::Bytes::from(gz),
                Err(e) => {
                    tracing::error!(error = %e, "Cannot gzip the bulk request; sending it as is.");
                    bytes::Bytes::copy_from_slice(body)
                }
            }
        } else {
            bytes::Bytes::copy_from_slice(body)
        };
        let mut back = self.hosts.subscribe();
        loop {
            let i = match self.hosts.pick() {
                Some(i) => i,
                None => {
                    self.degrade("every Elasticsearch host is down");
                    if let Some(suppressed) = ready(&self.warnings.outage) {
                        tracing::warn!(pipeline = %self.pipeline, suppressed, "Every Elasticsearch host is down; events are held until one answers again.");
                    }
                    tokio::select! {
                        _ = back.changed() => continue,
                        // No probe got an answer in time: send this request to a
                        // host anyway, with the full request timeout.
                        _ = tokio::time::sleep(self.probe_interval) => {}
                        _ = abort.cancelled() => return Sent::Aborted,
                    }
                    match self.hosts.pick().or_else(|| self.hosts.pick_any()) {
                        Some(i) => i,
                        None => return Sent::Aborted,
                    }
                }
            };
            // Host URLs are checked when the config is loaded.
            let Some(url) = self.hosts.url(i).and_then(|h| h.join("_bulk").ok()) else {
                return Sent::Aborted;
            };
            let mut request = self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .body(payload.clone());
            if self.compression {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            let started = tokio::time::Instant::now();
            let sent = tokio::select! {
                sent = request.send() => sent,
                _ = abort.cancelled() => return Sent::Aborted,
            };
            let failure = match sent {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(bytes) => {
                        backoff.reset();
                        if self.hosts.mark_up(i) {
                            tracing::info!(host = %self.host(i), "Elasticsearch host answered a request; sending to it again.");
                        }
                        self.recovered();
                        metrics::counter!(
                            "logpipe_bytes_out_total",
                            "pipeline" => self.pipeline.to_string(),
                            "stage" => STAGE
                        )
                        .increment(payload.len() as u64);
                        metrics::histogram!(
                            "logpipe_es_bulk_seconds",
                            "pipeline" => self.pipeline.to_string()
                        )
                        .record(started.elapsed().as_secs_f64());
                        return Sent::Answered {
                            body: bytes,
                            rtt: started.elapsed(),
                        };
                    }
                    Err(e) => {
                        self.answered(started.elapsed(), error_signal(&e));
                        Failure::HostDown(format!("reading the response: {e}"))
                    }
                },
                Ok(r) => {
                    let status = r.status().as_u16();
                    self.answered(started.elapsed(), concurrency::status_signal(status));
                    let text = r.text().await.unwrap_or_default();
                    let snippet: String = text.chars().take(300).collect();
                    let message = format!("HTTP {status}: {snippet}");
                    if matches!(status, 502..=504) {
                        Failure::HostDown(message)
                    } else if response::split_request(status) {
                        Counters::add(&self.counters.failed_requests, 1);
                        return Sent::Unfit { status, message };
                    } else {
                        if !response::retry_request(status) {
                            if let Some(suppressed) = ready(&self.warnings.refused) {
                                tracing::error!(host = %self.host(i), status, body = %snippet, suppressed, "Elasticsearch refused the bulk request; retrying (fix the cause: events are held meanwhile).");
                            }
                        }
                        Failure::Refused(message)
                    }
                }
                Err(e) => {
                    self.answered(started.elapsed(), error_signal(&e));
                    Failure::HostDown(error_chain(&e))
                }
            };
            Counters::add(&self.counters.failed_requests, 1);
            match &failure {
                Failure::HostDown(e) | Failure::Refused(e) => self.degrade(e),
            }
            match failure {
                Failure::HostDown(error) => {
                    // Throttled too: a flapping host goes down at every probe.
                    if self.hosts.mark_down(i) {
                        if let Some(suppressed) = ready(&self.warnings.host_down) {
                            tracing::warn!(host = %self.host(i), %error, suppressed, "Elasticsearch host marked down; its requests go to the other hosts until a probe finds it back.");
                        }
                    }
                    // With another host up, go there at once; if none is,
                    // the loop waits for the probe.
                }
                Failure::Refused(error) => {
                    if let Some(suppressed) = ready(&self.warnings.request) {
                        tracing::warn!(host = %self.host(i), %error, suppressed, pipeline = %self.pipeline, "Bulk request failed; events are held and the request is retried on the next host.");
                    }
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = abort.cancelled() => return Sent::Aborted,
                    }
                }
            }
        }
    }

    fn host(&self, i: usize) -> String {
        self.hosts.url(i).map(|u| u.to_string()).unwrap_or_default()
    }

    /// Probes each host marked down every `probe_interval` until `stop`
    /// fires. One task per host, so that a host that hangs until
    /// `probe_timeout` does not delay the probes of the others.
    pub async fn probe(self: Arc<Self>, stop: CancellationToken) {
        let mut probes = tokio::task::JoinSet::new();
        for i in 0..self.hosts.len() {
            let client = Arc::clone(&self);
            let stop = stop.clone();
            probes.spawn(async move { client.probe_host(i, stop).await });
        }
        while probes.join_next().await.is_some() {}
    }

    async fn probe_host(&self, i: usize, stop: CancellationToken) {
        let Some(url) = self.hosts.url(i) else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.probe_interval) => {}
                _ = stop.cancelled() => return,
            }
            if !self.hosts.is_down(i) {
                continue;
            }
            let probe = tokio::select! {
                probe = self.http.get(url.clone()).timeout(self.probe_timeout).send() => probe,
                _ = stop.cancelled() => return,
            };
            // Any answer but a gateway error means the host is there: an
            // API key without monitor rights gets 403 on `GET /`.
            match probe {
                Ok(r) if !matches!(r.status().as_u16(), 502..=504) => {
                    if self.hosts.mark_up(i) {
                        tracing::info!(host = %url, "Elasticsearch host is back; sending to it again.");
                    }
                }
                Ok(r) => {
                    tracing::debug!(host = %url, status = r.status().as_u16(), "Probe: the host is still down.")
                }
                Err(e) => {
                    tracing::debug!(host = %url, error = %error_chain(&e), timeout = ?self.probe_timeout, "Probe: the host is still down.")
                }
            }
        }
    }

    /// `GET /` on the first host that answers: the cluster's description.
    pub async fn root(&self) -> Result<serde_json::Value, String> {
        let mut last = String::from("no host");
        for url in &self.hosts.urls {
            match self.http.get(url.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(|e| format!("{url}: {e}"));
                }
                Ok(r) => last = format!("{url}: HTTP {}", r.status()),
                Err(e) => last = format!("{url}: {}", error_chain(&e)),
            }
        }
        Err(last)
    }
}

/// A timeout is back-pressure (the cluster is too slow for the request
/// now); a refused or reset connection says nothing about load.
fn error_signal(e: &reqwest::Error) -> Signal {
    if e.is_timeout() {
        Signal::BackPressure
    } else {
        Signal::Other
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    gz.write_all(body)?;
    gz.finish()
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn http_client(es: &Elasticsearch) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(es.timeout)
        .connect_timeout(es.timeout.min(Duration::from_secs(10)))
        .use_rustls_tls();
    if let Some(ca) = &es.tls.ca {
        let pem = read("CA file", ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::Pem {
            what: "CA file",
            path: ca.clone(),
            message: e.to_string(),
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&es.tls.client_cert, &es.tls.client_key) {
        let mut pem = read("client certificate", cert)?;
        pem.push(b'\n');
        pem.extend(read("client key", key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::Pem {
            what: "client certificate or key",
            path: cert.clone(),
            message: e.to_string(),
        })?;
        builder = builder.identity(identity);
    }
    let authorization = match &es.auth {
        Auth::None => None,
        Auth::Basic { user, password } => {
            let password = match password {
                Password::Given(p) => p.expose().to_owned(),
                Password::File(path) => {
                    let text = read("password file", path)?;
                    String::from_utf8_lossy(&text)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned()
                }
            };
            let token = base64_lite::encode(format!("{user}:{password}").as_bytes());
            Some(format!("Basic {token}"))
        }
        Auth::ApiKey(key) => Some(format!("ApiKey {}", key.expose())),
    };
    if let Some(value) = authorization {
        let mut value = HeaderValue::from_str(&value).map_err(|_| ClientError::Header)?;
        // Keeps it out of reqwest's Debug output.
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(error_chain(&e)))
}

/// Standard base64, for the basic-auth header (too small a need for a crate).
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn encodes_like_rfc_4648() {
            for (input, want) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("elastic:changeme", "ZWxhc3RpYzpjaGFuZ2VtZQ=="),
            ] {
                assert_eq!(super::encode(input.as_bytes()), want);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Hosts {
        Hosts::new(
            (0..n)
                .map(|i| reqwest::Url::parse(&format!("http://h{i}:9200/")).unwrap())
                .collect(),
        )
    }

    #[test]
    fn hosts_take_turns_and_skip_those_marked_down() {
        let h = hosts(3);
        let picks: Vec<usize> = (0..6).filter_map(|_| h.pick()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert!(h.mark_down(1));
        assert!(!h.mark_down(1), "marking twice is one transition");
        let picks: Vec<usize> = (0..4).filter_map(|_| h.pick()).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        h.mark_down(0);
        h.mark_down(2);
        assert_eq!(h.pick(), None, "all down");
        assert!(h.mark_up(1));
        assert_eq!(h.pick(), Some(1));
    }

    #[test]
    fn a_host_coming_back_wakes_waiting_senders() {
        let h = hosts(1);
        let rx = h.subscribe();
        h.mark_down(0);
        assert!(!rx.has_changed().unwrap());
        h.mark_up(0);
        assert!(rx.has_changed().unwrap());
    }
}
