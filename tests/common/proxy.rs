//! A fault-injecting HTTP/1.1 proxy in front of the real
//! Elasticsearch-compatible server: answers whole `_bulk` requests with an
//! error, rejects single items with 429, drops connections mid-body, answers
//! slowly (one request, or every answer by a set delay), plays a host that is
//! down, and optionally terminates TLS and
//! checks basic auth. Small on purpose: it understands exactly what reqwest
//! sends (Content-Length bodies, keep-alive).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What to do with the next `_bulk` request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer the whole request with this status.
    Status(u16),
    /// Pass the request on, but answer every `n`-th item with a 429
    /// (those items are not sent to the server).
    RejectItems(usize),
    /// Read half the body, then close the connection.
    DropMidBody,
    /// Pass the request on, then close the connection without answering.
    DropAfterForward,
    /// Wait this long, then pass the request on.
    Slow(Duration),
}

pub struct Proxy {
    pub url: String,
    upstream: String,
    http: reqwest::Client,
    faults: Mutex<VecDeque<Fault>>,
    /// `_bulk` requests that reached the server through this proxy.
    pub forwarded: AtomicUsize,
    /// 429s the server answered through this proxy: whole `_bulk`
    /// requests, and items inside a 200 (`es_rejected_execution_exception`).
    pub server_429s: AtomicUsize,
    /// While set, every connection is closed at once (a dead host).
    pub down: AtomicBool,
    /// `Authorization` value required, if any.
    auth: Option<String>,
    /// Every request head seen, for leak checks.
    pub heads: Mutex<Vec<String>>,
    /// `_bulk` bodies (uncompressed) longer than this get a 413, as from
    /// Elasticsearch's `http.max_content_length`.
    pub max_body: AtomicUsize,
    /// When set, `GET /` is answered with this instead of the server's own
    /// answer: another version or distribution.
    pub root: Mutex<Option<Value>>,
    /// Every answer (`_bulk`, `GET /`, anything) waits this long before it
    /// is sent: a slow but working cluster.
    delay: Mutex<Duration>,
    /// Requests answered after `delay`, by path.
    pub delayed: Mutex<Vec<String>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Arc<Proxy> {
        Self::start_with(upstream, None, None).await
    }

    pub async fn start_with(
        upstream: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
        auth: Option<String>,
    ) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let proxy = Arc::new(Proxy {
            url: format!("{scheme}://localhost:{port}"),
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            faults: Mutex::new(VecDeque::new()),
            forwarded: AtomicUsize::new(0),
            server_429s: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            auth,
            heads: Mutex::new(Vec::new()),
            max_body: AtomicUsize::new(usize::MAX),
            root: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            delayed: Mutex::new(Vec::new()),
        });
        let p = Arc::clone(&proxy);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                if p.down.load(Ordering::SeqCst) {
                    drop(socket);
                    continue;
                }
                let p = Arc::clone(&p);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(socket).await {
                                p.serve(stream).await;
                            }
                        }
                        None => p.serve(socket).await,
                    }
                });
            }
        });
        proxy
    }

    /// Queues faults for the next `_bulk` requests, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    pub fn faults_left(&self) -> usize {
        self.faults.lock().unwrap().len()
    }

    /// Delays every answer from now on by `delay` (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Waits the set delay, if any, before an answer to `path`.
    async fn hold(&self, path: &str) {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            self.delayed.lock().unwrap().push(path.to_owned());
        }
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) {
        let mut buf = Vec::new();
        loop {
            if self.down.load(Ordering::SeqCst) {
                return;
            }
            let head_end = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            buf.drain(..head_end);
            self.heads.lock().unwrap().push(head.clone());
            let mut lines = head.lines();
            let request_line = lines.next().unwrap_or_default().to_owned();
            let mut parts = request_line.split(' ');
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let header = |name: &str| {
                head.lines().skip(1).find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let gzip = header("content-encoding").is_some_and(|v| v == "gzip");
            let authorization = header("authorization");
            let is_bulk = method == "POST" && path.ends_with("_bulk");
            let fault = if is_bulk {
                self.faults.lock().unwrap().pop_front()
            } else {
                None
            };
            if let Some(Fault::DropMidBody) = fault {
                while buf.len() < length / 2 {
                    let mut chunk = [0u8; 8192];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                return;
            }
            while buf.len() < length {
                let mut chunk = [0u8; 65536];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let mut body: Vec<u8> = buf.drain(..length).collect();
            if gzip {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                body = plain;
            }
            let mut fault = fault;
            self.hold(&path).await;
            if let Some((status, answer)) =
                self.local_answer(&method, &path, &body, authorization.as_deref(), &mut fault)
            {
                if write_response(&mut stream, status, answer.to_string().as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            let (status, answer) = match fault {
                Some(Fault::Status(s)) => {
                    (s, json!({"error": "injected"}).to_string().into_bytes())
                }
                Some(Fault::RejectItems(n)) => self.reject_items(&path, &body, n).await,
                Some(Fault::DropAfterForward) => {
                    self.forward(&method, &path, body, is_bulk).await;
                    return;
                }
                Some(Fault::Slow(d)) => {
                    tokio::time::sleep(d).await;
                    self.forward(&method, &path, body, is_bulk).await
                }
                Some(Fault::DropMidBody) | None => {
                    self.forward(&method, &path, body, is_bulk).await
                }
            };
            if write_response(&mut stream, status, &answer).await.is_err() {
                return;
            }
        }
    }

    /// The answer the proxy gives itself, without the server: 401 without
    /// the required credentials, the overridden `GET /`, 413 over
    /// `max_body` (a fault taken for this request is kept for the next).
    fn local_answer(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        authorization: Option<&str>,
        fault: &mut Option<Fault>,
    ) -> Option<(u16, Value)> {
        if let Some(want) = &self.auth {
            if authorization != Some(want.as_str()) {
                return Some((
                    401,
                    json!({"error": {"type": "security_exception", "reason": "missing authentication credentials"}, "status": 401}),
                ));
            }
        }
        if method == "GET" && path == "/" {
            if let Some(root) = self.root.lock().unwrap().clone() {
                return Some((200, root));
            }
        }
        let is_bulk = method == "POST" && path.ends_with("_bulk");
        if is_bulk && body.len() > self.max_body.load(Ordering::Relaxed) {
            if let Some(fault) = fault.take() {
                self.faults.lock().unwrap().push_front(fault);
            }
            return Some((
                413,
                json!({"error": {"type": "content_too_long_exception", "reason": "request body is too large"}, "status": 413}),
            ));
        }
        None
    }

    async fn forward(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        is_bulk: bool,
    ) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.upstream);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, url)
            .header(
                "content-type",
                if is_bulk {
                    "application/x-ndjson"
                } else {
                    "application/json"
                },
            )
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) => {
                if is_bulk {
                    self.forwarded.fetch_add(1, Ordering::SeqCst);
                }
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap_or_default().to_vec();
                if is_bulk {
                    self.server_429s
                        .fetch_add(count_429s(status, &body), Ordering::SeqCst);
                }
                (status, body)
            }
            Err(_) => (502, b"{}".to_vec()),
        }
    }

    /// Sends all but every `n`-th item on, and answers those with 429.
    async fn reject_items(&self, path: &str, body: &[u8], n: usize) -> (u16, Vec<u8>) {
        let text = String::from_utf8_lossy(body);
        let lines: Vec<&str> = text.lines().collect();
        let items: Vec<(&str, &str)> = lines.chunks(2).map(|c| (c[0], c[1])).collect();
        let mut passed = String::new();
        for (k, (action, source)) in items.iter().enumerate() {
            if k % n != n - 1 {
                passed.push_str(action);
                passed.push('\n');
                passed.push_str(source);
                passed.push('\n');
            }
        }
        let upstream_items = if passed.is_empty() {
            Vec::new()
        } else {
            let (status, answer) = self.forward("POST", path, passed.into_bytes(), true).await;
            if status != 200 {
                return (status, answer);
            }
            let v: Value = serde_json::from_slice(&answer).unwrap();
            v["items"].as_array().cloned().unwrap_or_default()
        };
        let mut upstream = upstream_items.into_iter();
        let merged: Vec<Value> = (0..items.len())
            .map(|k| {
                if k % n == n - 1 {
                    json!({"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected by the test proxy"}}})
                } else {
                    upstream.next().unwrap_or(Value::Null)
                }
            })
            .collect();
        (
            200,
            json!({"took": 1, "errors": true, "items": merged})
                .to_string()
                .into_bytes(),
        )
    }
}

/// 429s in one `_bulk` answer: the whole request, or its items.
fn count_429s(status: u16, body: &[u8]) -> usize {
    if status == 429 {
        return 1;
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter_map(|i| i.as_object()?.values().next()?["status"].as_u64())
            .filter(|s| *s == 429)
            .count()
    })
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Like [`tls_acceptor`], but the proxy also requires a client certificate
/// signed by the same CA (mutual TLS). Returns the acceptor, the CA's PEM,
/// and a client certificate and its key, as PEM.
pub fn mtls_acceptor() -> (tokio_rustls::TlsAcceptor, String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let sign = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert, key)
    };
    let (leaf, leaf_key) = sign(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]);
    let (client, client_key) = sign(vec!["logpipe-client".to_owned()]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca.pem(),
        client.pem(),
        client_key.serialize_pem(),
    )
}

/// A CA and a `localhost` server certificate it signed, for a TLS proxy:
/// the acceptor and the CA's PEM (what logpipe's `ca` points at).
pub fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}
