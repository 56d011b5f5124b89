//! Helpers shared by the integration tests: the real services started by
//! `scripts/test.sh`, the logpipe binary, Elasticsearch queries.
#![allow(dead_code)]

pub mod proxy;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Endpoints of the real Kafka-protocol broker and Elasticsearch-compatible
/// server started by the test command.
pub struct Services {
    pub kafka: String,
    pub es: String,
}

/// The services, or `None` (test skipped) when run outside the test command.
/// Under the test command a missing service is a failure, not a skip.
pub fn services() -> Option<Services> {
    let kafka = std::env::var("LOGPIPE_TEST_KAFKA").ok();
    let es = std::env::var("LOGPIPE_TEST_ES").ok();
    match (kafka, es) {
        (Some(kafka), Some(es)) => Some(Services { kafka, es }),
        _ => {
            assert!(
                std::env::var("LOGPIPE_TEST_REQUIRE_SERVICES").is_err(),
                "LOGPIPE_TEST_KAFKA and LOGPIPE_TEST_ES must be set by scripts/test.sh"
            );
            eprintln!("skipped: run through scripts/test.sh to get Kafka and Elasticsearch");
            None
        }
    }
}

/// A name no other test run uses (topics, indices, groups).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

pub fn logpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logpipe"))
}

/// Starts `logpipe run PIPELINE --state-dir STATE [extra]` with logs to a file.
pub fn spawn_run(pipeline: &Path, state: &Path, extra: &[&str], stdout: Stdio) -> Child {
    run_command(pipeline, state, extra, stdout).spawn().unwrap()
}

/// `logpipe run PIPELINE --state-dir STATE [extra]`, its log in
/// `STATE.log`, to be adjusted (user, limits) and spawned.
pub fn run_command(pipeline: &Path, state: &Path, extra: &[&str], stdout: Stdio) -> Command {
    let log = std::fs::File::create(state.with_extension("log")).unwrap();
    let mut command = logpipe();
    command
        .arg("run")
        .arg(pipeline)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(stdout)
        .stderr(log);
    command
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, killing it after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("logpipe did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A small Elasticsearch client for assertions.
pub struct Es {
    pub base: String,
    http: reqwest::Client,
}

impl Es {
    pub fn new(base: &str) -> Self {
        Es {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        Self::send(self.http.put(self.url(path)).json(&body)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Sends a request; the status and the JSON body (null if none).
    async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn refresh(&self, pattern: &str) {
        let _ = self
            .http
            .post(format!("{}/{pattern}/_refresh", self.base))
            .send()
            .await;
    }

    /// Documents in the indices matching `pattern` (0 when none exist).
    pub async fn count(&self, pattern: &str) -> u64 {
        self.refresh(pattern).await;
        let (status, body) = self.get(&format!("{pattern}/_count")).await;
        if status != 200 {
            return 0;
        }
        body["count"].as_u64().unwrap_or(0)
    }

    /// Names of the indices matching `pattern`.
    pub async fn indices(&self, pattern: &str) -> Vec<String> {
        let (_, body) = self
            .get(&format!("_cat/indices/{pattern}?format=json"))
            .await;
        let mut names: Vec<String> = body
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["index"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// All hits (`_id` and `_source`) of the indices matching `pattern`.
    pub async fn search_all(&self, pattern: &str, size: usize) -> Vec<Value> {
        self.refresh(pattern).await;
        let (_, body) = self
            .post(
                &format!("{pattern}/_search"),
                serde_json::json!({"size": size, "query": {"match_all": {}}}),
            )
            .await;
        body["hits"]["hits"].as_array().cloned().unwrap_or_default()
    }
}

/// Creates a Kafka topic with the admin API.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// A temp dir that survives a failing test's unwinding for inspection when
/// LOGPIPE_TEST_KEEP is set.
pub fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("logpipe-test-")
        .tempdir()
        .unwrap();
    if std::env::var_os("LOGPIPE_TEST_KEEP").is_some() {
        eprintln!("test files in {}", dir.path().display());
    }
    dir
}

pub fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        f.write_all(line.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.sync_all().unwrap();
}

/// An hour: longer than the tests' `close_inactive`, so a backdated log
/// counts as quiet and is identified at once even when it is shorter than
/// the 1024-byte fingerprint.
pub const QUIET: Duration = Duration::from_secs(3600);

/// Moves `path`'s modification time `age` back.
pub fn backdate(path: &Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

/// A TCP proxy in front of a server that can be taken down (connections
/// refused and cut) and brought back.
pub struct Proxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = std::sync::Arc::new(generation);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

/// A broker of this test's own, advertising the proxy's address, so every
/// connection of the clients goes through the proxy.
pub struct OwnBroker {
    child: std::process::Child,
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_broker(
    listen: u16,
    advertise: u16,
    extra: &[&str],
    log: &std::path::Path,
) -> OwnBroker {
    let bin = std::env::var("LOGPIPE_TEST_TANSU_BIN")
        .expect("LOGPIPE_TEST_TANSU_BIN from scripts/test.sh");
    let child = std::process::Command::new(bin)
        .arg("broker")
        .args(["--listener-url", &format!("tcp://127.0.0.1:{listen}")])
        .args([
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertise}"),
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    OwnBroker { child }
}

pub async fn wait_for_port(port: u16) {
    eventually(
        Duration::from_secs(30),
        "the broker to listen",
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
}

/// A broker of the test's own that it can stop and start again on the same
/// port. Tests that need a broker restart use only this (an address, `kill`,
/// `restart`), so the broker behind it can change (Tansu today, Apache Kafka
/// later) without touching them. Tansu runs with memory storage: a restart
/// loses its topics, offsets and idempotent-producer state, which is the
/// harder case for a producer.
pub struct RestartableBroker {
    pub port: u16,
    dir: std::path::PathBuf,
    running: Option<OwnBroker>,
    /// How many times it was started (log files `broker-<n>.log`).
    pub starts: usize,
}

impl RestartableBroker {
    /// Starts a broker on a free port; returns once it listens.
    pub async fn start(dir: &Path) -> RestartableBroker {
        let mut broker = RestartableBroker {
            port: free_port(),
            dir: dir.to_path_buf(),
            running: None,
            starts: 0,
        };
        broker.restart().await;
        broker
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker at once (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        drop(self.running.take());
    }

    /// Starts the broker again on the same port; returns once it listens.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "kill the broker first");
        self.starts += 1;
        let log = self.dir.join(format!("broker-{}.log", self.starts));
        self.running = Some(start_broker(self.port, self.port, &[], &log));
        wait_for_port(self.port).await;
    }
}

/// Creates the topic unless it exists (a broker that kept it over a
/// restart, or created it for a producer's metadata request).
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("cannot create topic {t}: {e}"),
        }
    }
}
