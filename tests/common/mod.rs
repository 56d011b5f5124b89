//! Helpers shared by the integration tests: the real services started by
//! `scripts/test.sh`, the logpipe binary, Elasticsearch queries.
#![allow(dead_code)]

mod pipeline_toml;
pub mod proxy;

#[allow(unused_imports)] // each test file uses some of common
pub use pipeline_toml::{pipeline_toml, quote, PipelineToml};

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

/// The real Elasticsearch node of the test command (beside OpenSearch,
/// which is `Services::es`), or `None` (test skipped) outside it.
pub fn elasticsearch() -> Option<String> {
    let url = std::env::var("LOGPIPE_TEST_ELASTICSEARCH").ok();
    if url.is_none() {
        assert!(
            std::env::var("LOGPIPE_TEST_REQUIRE_SERVICES").is_err(),
            "LOGPIPE_TEST_ELASTICSEARCH must be set by scripts/test.sh"
        );
        eprintln!("skipped: run through scripts/test.sh to get Elasticsearch");
    }
    url
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

/// Polls `check` until it returns `Some`, or panics with `what` after
/// `timeout`: [`eventually`] for tests without a runtime.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` from the daemon's monitoring endpoint at `addr`
/// (`127.0.0.1:PORT`): status and body, or `None` while nothing answers.
/// Blocking, so that tests with and without a runtime can ask.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// The value of the first sample of metric `name` whose labels include
/// all of `labels` (`stage="input.file"`), in a `/metrics` text.
pub fn metric_sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// Waits (up to `timeout`) until the daemon at `addr` serves metric `name`
/// with `labels` and `ok(value)` holds; returns the value. The failure
/// names the metric and the last value seen.
pub fn wait_metric(
    addr: &str,
    name: &str,
    labels: &[&str],
    timeout: Duration,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some((200, text)) = http_get(addr, "/metrics") {
            last = metric_sample(&text, name, labels);
            if let Some(v) = last.filter(|v| ok(*v)) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {name}{{{}}} at {addr}; last value: {last:?}",
            labels.join(",")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `logpipe setup [--check]` of `pipeline`, run to its end.
pub fn run_setup(pipeline: &Path, check: bool) -> std::process::Output {
    let mut cmd = logpipe();
    cmd.arg("setup");
    if check {
        cmd.arg("--check");
    }
    cmd.arg(pipeline).output().unwrap()
}

/// What a command printed, stdout then stderr.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A monitoring address on a free port, for `--metrics-address`.
pub fn metrics_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Waits until the file at `log` contains `text`, `count` times at least
/// (a daemon's log, say); the failure shows the file.
pub fn wait_for_text(log: &Path, text: &str, count: usize, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        if content.matches(text).count() >= count {
            return content;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {count}× {text:?} in {}:\n{content}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
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

/// Creates a Kafka topic with the admin API; it must not exist yet.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    make_topic(brokers, topic, partitions, false).await;
}

/// Creates the topic unless it exists (a broker that kept it over a
/// restart, or created it for a producer's metadata request).
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) {
    make_topic(brokers, topic, partitions, true).await;
}

async fn make_topic(brokers: &str, topic: &str, partitions: i32, may_exist: bool) {
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
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if may_exist => {}
            Err((t, e)) => panic!("cannot create topic {t}: {e}"),
        }
    }
}

/// The Elasticsearch output of a pipeline file whose `[[output]]` holds
/// `settings`, as `logpipe` would load it.
pub fn es_output(dir: &Path, settings: &str) -> logpipe::output::elasticsearch::Elasticsearch {
    let path = dir.join(format!("p{:08x}.toml", fastrand::u32(..)));
    let text = format!(
        "[[input]]\ntype = \"file\"\npaths = [\"/nonexistent\"]\n[[output]]\ntype = \"elasticsearch\"\n{settings}\n"
    );
    std::fs::write(&path, text).unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_: &str| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    match &loaded.pipelines[0].outputs[0].spec {
        logpipe::output::OutputSpec::Elasticsearch(es) => (**es).clone(),
        other => panic!("not elasticsearch: {other:?}"),
    }
}

/// Sends `batches` to a stage on one lane of a fresh tracker, closes its
/// input, waits up to `timeout` for the stage to end well, and asserts that
/// every batch was acknowledged as delivered, in order.
pub async fn deliver_all(
    tx: tokio::sync::mpsc::Sender<logpipe::Batch>,
    batches: Vec<Vec<logpipe::Event>>,
    stage: tokio::task::JoinHandle<Result<(), logpipe::error::StageError>>,
    timeout: Duration,
) {
    let mut tracker = logpipe::ack::AckTracker::new();
    let lane = tracker.open_lane();
    let n = batches.len();
    for (i, events) in batches.into_iter().enumerate() {
        let token = tracker.track(lane, i, events.len());
        tx.send(logpipe::Batch::new(events, token)).await.unwrap();
    }
    drop(tx);
    tokio::time::timeout(timeout, stage)
        .await
        .expect("the stage finishes")
        .unwrap()
        .unwrap();
    tracker.drain();
    assert!(!tracker.has_failed(), "a batch failed");
    assert_eq!(tracker.in_flight(), 0, "every batch acknowledged");
    assert_eq!(tracker.take_progress(), vec![(lane, n - 1)]);
}

/// A temp dir that survives a failing test's unwinding for inspection when
/// LOGPIPE_TEST_KEEP is set.
pub fn temp_dir() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("logpipe-test-")
        .tempdir()
        .unwrap();
    if std::env::var_os("LOGPIPE_TEST_KEEP").is_some() {
        dir.disable_cleanup(true);
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
/// counts as quiet. (Short files once waited for that; they are read at
/// once now, so tests that backdate for it no longer need to.)
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
    /// A proxy on a free port.
    pub async fn start(upstream: String) -> Proxy {
        Self::start_on(0, upstream).await
    }

    /// A proxy on `port` (0: a free one).
    pub async fn start_on(port: u16, upstream: String) -> Proxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("proxy: cannot listen on 127.0.0.1:{port}: {e}"));
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

/// One of the shared broker's `PROXYk` listeners, held by one test at a
/// time: the broker advertises a port for it that only this test's proxy
/// listens on, so every connection of the clients that bootstrap through
/// the proxy goes through it (and an outage of the proxy is an outage of
/// the broker for them, and for them only). Released on drop.
pub struct BrokerSlot {
    lock: std::path::PathBuf,
}

impl Drop for BrokerSlot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Takes a free `PROXYk` listener of the shared broker (waiting up to two
/// minutes for one) and starts a proxy in front of it on the port the
/// broker advertises for it: `brokers = 127.0.0.1:{proxy.port}`.
pub async fn proxied_broker() -> (BrokerSlot, Proxy) {
    let slots = std::env::var("LOGPIPE_TEST_KAFKA_PROXIED")
        .expect("LOGPIPE_TEST_KAFKA_PROXIED from scripts/test.sh");
    let run = std::env::var("LOGPIPE_TEST_RUN_DIR").expect("LOGPIPE_TEST_RUN_DIR");
    let locks = Path::new(&run).join("proxy-slots");
    std::fs::create_dir_all(&locks).unwrap();
    let slots: Vec<(u16, u16)> = slots
        .split(',')
        .map(|s| {
            let (listen, advertised) = s.split_once(':').unwrap();
            (listen.parse().unwrap(), advertised.parse().unwrap())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for (k, (listen, advertised)) in slots.iter().enumerate() {
            let lock = locks.join(format!("slot-{k}"));
            // a slot left by a test process that died is free again
            if let Ok(pid) = std::fs::read_to_string(&lock) {
                if !Path::new(&format!("/proc/{}", pid.trim())).exists() {
                    let _ = std::fs::remove_file(&lock);
                }
            }
            let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            else {
                continue;
            };
            use std::io::Write;
            write!(f, "{}", std::process::id()).unwrap();
            let slot = BrokerSlot { lock };
            let proxy = Proxy::start_on(*advertised, format!("127.0.0.1:{listen}")).await;
            return (slot, proxy);
        }
        assert!(
            Instant::now() < deadline,
            "no free PROXYk listener of the test broker in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A broker of the test's own that it can kill and start again on the same
/// port. Tests that need a broker restart use only this (an address,
/// `kill`, `restart`), so the broker behind it can change without touching
/// them: an Apache Kafka node ([`OwnKafka`]) whose log stays on disk.
pub struct RestartableBroker {
    pub port: u16,
    kafka: OwnKafka,
    /// How many times it was started.
    pub starts: usize,
}

impl RestartableBroker {
    /// Starts a broker on a free port; returns once it listens.
    pub async fn start(dir: &Path) -> RestartableBroker {
        let kafka = OwnKafka::new(&dir.join("kafka"));
        let mut broker = RestartableBroker {
            port: kafka.port,
            kafka,
            starts: 0,
        };
        broker.restart().await;
        broker
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        self.kafka.brokers()
    }

    /// Kills the broker at once (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.kafka.server.take() {
            if let Some(child) = server.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts the broker again on the same port, with its log; returns once
    /// it listens. Needs a multi-threaded test runtime (it blocks a thread).
    pub async fn restart(&mut self) {
        assert!(self.kafka.server.is_none(), "kill the broker first");
        self.starts += 1;
        tokio::task::block_in_place(|| self.kafka.start());
        wait_for_port(self.port).await;
    }
}

/// A server process of a test's own (a second OpenSearch node, a broker that
/// is stopped and started): killed on drop, and recorded in the run dir so
/// scripts/test.sh kills it too should the test process die first.
pub struct OwnServer {
    pub child: Option<Child>,
    pid_file: std::path::PathBuf,
}

impl OwnServer {
    /// Starts `command` with its output to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> OwnServer {
        let out = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let run = std::env::var("LOGPIPE_TEST_RUN_DIR").expect("LOGPIPE_TEST_RUN_DIR");
        let pid_file =
            Path::new(&run)
                .join("pids")
                .join(format!("{}-{}", std::process::id(), child.id()));
        let _ = std::fs::create_dir_all(pid_file.parent().unwrap());
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        OwnServer {
            child: Some(child),
            pid_file,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGTERM, then wait (SIGKILL after `timeout`).
    pub fn stop(&mut self, timeout: Duration) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + timeout;
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Node settings for a write pool of one thread and a queue of one: bulk
/// requests touching several shards at once get items answered 429 by the
/// server itself.
pub const TINY_WRITE_QUEUE: [&str; 2] = [
    "-Ethread_pool.write.size=1",
    "-Ethread_pool.write.queue_size=1",
];

/// An OpenSearch node of the test's own, started the way scripts/test.sh
/// starts the shared one, with `settings` (`-Ename=value`) added; returns it
/// once it answers, with its URL.
pub async fn own_opensearch(dir: &Path, settings: &[&str]) -> (OwnServer, String) {
    own_search_node("OPENSEARCH", dir, settings).await
}

/// An Elasticsearch node of the test's own, as [`own_opensearch`].
pub async fn own_elasticsearch(dir: &Path, settings: &[&str]) -> (OwnServer, String) {
    own_search_node("ELASTICSEARCH", dir, settings).await
}

/// An Elasticsearch 6.8 node with ILM (the default distribution with
/// x-pack-ilm) of the test's own, as [`own_opensearch`].
pub async fn own_elasticsearch_ilm(dir: &Path, settings: &[&str]) -> (OwnServer, String) {
    own_search_node("ELASTICSEARCH_ILM", dir, settings).await
}

/// A node started by the script the test command names in
/// `LOGPIPE_TEST_{KIND}_SH`, with `LOGPIPE_TEST_{KIND}_HOME`.
async fn own_search_node(kind: &str, dir: &Path, settings: &[&str]) -> (OwnServer, String) {
    let var = |name: &str| {
        let key = format!("LOGPIPE_TEST_{kind}_{name}");
        std::env::var(&key).unwrap_or_else(|_| panic!("{key}"))
    };
    let (script, home) = (var("SH"), var("HOME"));
    let as_user = std::env::var("LOGPIPE_TEST_AS_USER").unwrap_or_default();
    let (http, transport) = (free_port(), free_port());
    if as_user.starts_with("setpriv") {
        // run as nobody (no user namespaces here): it must reach its node dir
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.join("node")).unwrap();
        std::os::unix::fs::chown(dir.join("node"), Some(65534), Some(65534)).unwrap();
    }
    let mut argv: Vec<String> = as_user.split_whitespace().map(str::to_owned).collect();
    argv.push(script);
    argv.extend([
        home,
        dir.join("node").display().to_string(),
        http.to_string(),
        transport.to_string(),
    ]);
    argv.extend(settings.iter().map(|s| s.to_string()));
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env("OPENSEARCH_HEAP", "256m")
        .env("ELASTICSEARCH_HEAP", "256m");
    let server = OwnServer::spawn(command, &dir.join(format!("{}.log", kind.to_lowercase())));
    let url = format!("http://127.0.0.1:{http}");
    let http_client = reqwest::Client::new();
    let health = format!("{url}/_cluster/health?wait_for_status=yellow&timeout=1s");
    eventually(Duration::from_secs(120), "the search node", || {
        let (c, h) = (http_client.clone(), health.clone());
        async move {
            c.get(&h)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
    (server, url)
}

/// An Apache Kafka broker of the test's own (one KRaft node, PLAINTEXT on
/// `port`), its log on disk in `dir`, that can be stopped and started again
/// on the same port with the same log: scripts/services/kafka-broker.sh.
pub struct OwnKafka {
    pub dir: std::path::PathBuf,
    pub port: u16,
    pub server: Option<OwnServer>,
    starts: u32,
}

impl OwnKafka {
    pub fn new(dir: &Path) -> OwnKafka {
        Self::with_properties(dir, "")
    }

    /// A broker with `extra` lines added to its server.properties.
    pub fn with_properties(dir: &Path, extra: &str) -> OwnKafka {
        let (port, controller) = (free_port(), free_port());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("server.properties"),
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n\
                 offsets.topic.num.partitions=3\ntransaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\nshare.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n\
                 group.consumer.min.session.timeout.ms=6000\ngroup.consumer.session.timeout.ms=10000\n\
                 group.consumer.min.heartbeat.interval.ms=1000\ngroup.consumer.heartbeat.interval.ms=2000\n{extra}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        OwnKafka {
            dir: dir.to_owned(),
            port,
            server: None,
            starts: 0,
        }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (formatting the storage the first time) and waits until
    /// it says it started (90 s at most).
    pub fn start(&mut self) {
        let script =
            std::env::var("LOGPIPE_TEST_KAFKA_BROKER_SH").expect("LOGPIPE_TEST_KAFKA_BROKER_SH");
        let lib = std::env::var("LOGPIPE_TEST_KAFKA_LIB").expect("LOGPIPE_TEST_KAFKA_LIB");
        self.starts += 1;
        let log = self.dir.join(format!("kafka-{}.log", self.starts));
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(lib)
            .arg(&self.dir)
            .env("KAFKA_HEAP", "384m");
        self.server = Some(OwnServer::spawn(command, &log));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Kafka Server started") {
                return;
            }
            let exited = self
                .server
                .as_mut()
                .and_then(|s| s.child.as_mut())
                .is_some_and(|c| c.try_wait().unwrap().is_some());
            assert!(!exited, "the broker exited; its log:\n{text}");
            assert!(
                Instant::now() < deadline,
                "the broker did not start in 90 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM (a clean shutdown), waiting up to a minute.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Duration::from_secs(60));
        }
    }
}

/// One member of a consumer group as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    /// The partitions assigned to it, as `(topic, partition)`.
    pub partitions: std::collections::BTreeSet<(String, i32)>,
}

/// A consumer group as `kafka-consumer-groups --describe` shows it: its
/// type (`"consumer"` for KIP-848, `"classic"`), state and members.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub kind: String,
    pub state: String,
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// The member with this `group.instance.id`.
    pub fn instance(&self, id: &str) -> Option<&GroupMember> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(id))
    }
}

/// Describes `group` through the admin API (DescribeConsumerGroups, which
/// rdkafka does not wrap: librdkafka's C API directly). Blocks.
pub fn describe_group(brokers: &str, group: &str) -> Result<GroupDescription, String> {
    use rdkafka::bindings as rd;
    use rdkafka::producer::Producer;
    use std::ffi::{CStr, CString};
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let rk = producer.client().native_ptr();
    let text = |p: *const std::os::raw::c_char| -> String {
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let group_c = CString::new(group).unwrap();
    // SAFETY: every pointer below comes from librdkafka for this client and
    // is used before the event that owns it is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        );
        let mut groups = [group_c.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(rk, groups.as_mut_ptr(), 1, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, 20_000);
        let result = (|| {
            if event.is_null() {
                return Err("no answer to DescribeConsumerGroups in 20 s".to_owned());
            }
            if rd::rd_kafka_event_error(event) as i32 != 0 {
                return Err(text(rd::rd_kafka_event_error_string(event)));
            }
            let res = rd::rd_kafka_event_DescribeConsumerGroups_result(event);
            let mut n = 0usize;
            let descs = rd::rd_kafka_DescribeConsumerGroups_result_groups(res, &mut n);
            if n != 1 {
                return Err(format!("{n} groups described"));
            }
            let desc = *descs;
            let error = rd::rd_kafka_ConsumerGroupDescription_error(desc);
            if !error.is_null() {
                return Err(text(rd::rd_kafka_error_string(error)));
            }
            let kind = text(rd::rd_kafka_consumer_group_type_name(
                rd::rd_kafka_ConsumerGroupDescription_type(desc),
            ))
            .to_ascii_lowercase();
            let state = text(rd::rd_kafka_consumer_group_state_name(
                rd::rd_kafka_ConsumerGroupDescription_state(desc),
            ));
            let mut members = Vec::new();
            for i in 0..rd::rd_kafka_ConsumerGroupDescription_member_count(desc) {
                let m = rd::rd_kafka_ConsumerGroupDescription_member(desc, i);
                let instance = text(rd::rd_kafka_MemberDescription_group_instance_id(m));
                let mut partitions = std::collections::BTreeSet::new();
                let assignment = rd::rd_kafka_MemberDescription_assignment(m);
                if !assignment.is_null() {
                    let list = rd::rd_kafka_MemberAssignment_partitions(assignment);
                    if !list.is_null() {
                        for k in 0..(*list).cnt as usize {
                            let e = &*(*list).elems.add(k);
                            partitions.insert((text(e.topic), e.partition));
                        }
                    }
                }
                members.push(GroupMember {
                    member_id: text(rd::rd_kafka_MemberDescription_consumer_id(m)),
                    instance_id: (!instance.is_empty()).then_some(instance),
                    client_id: text(rd::rd_kafka_MemberDescription_client_id(m)),
                    partitions,
                });
            }
            members.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
            Ok(GroupDescription {
                kind,
                state,
                members,
            })
        })();
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        result
    }
}

/// Runs `command` to its end; asserts it exits 0, showing its stderr if it
/// does not.
pub fn succeeds(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The books one output of one half of a pipeline closed with, as the
/// daemon logs them when the pipeline stops (`Books.` lines; see
/// `logpipe::accounting`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClosedBooks {
    pub half: String,
    pub output: String,
    pub read: u64,
    pub delivered: u64,
    pub already_indexed: u64,
    pub dead_lettered: u64,
    pub filtered: u64,
    pub skipped: u64,
    pub in_flight: u64,
    pub failed: u64,
    pub balanced: bool,
}

impl ClosedBooks {
    /// Every event read has its one outcome at this output.
    pub fn assert_exact(&self, what: &str) {
        assert!(self.balanced, "{what}: the books do not balance: {self:?}");
        assert_eq!(
            (self.in_flight, self.failed),
            (0, 0),
            "{what}: events left in flight: {self:?}"
        );
        assert_eq!(
            self.read,
            self.delivered + self.already_indexed + self.dead_lettered + self.filtered + self.skipped,
            "{what}: read = delivered + already indexed + dead-lettered + filtered + skipped: {self:?}"
        );
        println!(
            "{what}: books of {} ({}): read {} = delivered {} + already indexed {} + dead-lettered {} + filtered {} + skipped {}",
            self.output,
            self.half,
            self.read,
            self.delivered,
            self.already_indexed,
            self.dead_lettered,
            self.filtered,
            self.skipped
        );
    }
}

/// The last `Books.` (or `Books do not balance.`) line of each half and
/// output in a daemon's log: the books of the last run that stopped.
pub fn closed_books(log: &str) -> Vec<ClosedBooks> {
    let mut last: Vec<ClosedBooks> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line
            .split_once(" Books. ")
            .or_else(|| line.split_once(" Books do not balance. "))
            .map(|(_, rest)| rest)
        else {
            continue;
        };
        let mut b = ClosedBooks::default();
        for field in rest.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"');
            let n = || value.parse::<u64>().unwrap_or(0);
            match key {
                "half" => b.half = value.to_owned(),
                "output" => b.output = value.to_owned(),
                "read" => b.read = n(),
                "delivered" => b.delivered = n(),
                "already_indexed" => b.already_indexed = n(),
                "dead_lettered" => b.dead_lettered = n(),
                "filtered" => b.filtered = n(),
                "skipped" => b.skipped = n(),
                "in_flight" => b.in_flight = n(),
                "failed" => b.failed = n(),
                "balanced" => b.balanced = value == "true",
                _ => {}
            }
        }
        last.retain(|o| !(o.half == b.half && o.output == b.output));
        last.push(b);
    }
    last
}

/// The closed books of `half` in the log at `path` (exactly one output).
pub fn closed_books_of(path: &Path, half: &str) -> ClosedBooks {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let books: Vec<ClosedBooks> = closed_books(&log)
        .into_iter()
        .filter(|b| b.half == half)
        .collect();
    assert_eq!(
        books.len(),
        1,
        "one output's books of the {half} half in {}:\n{log}",
        path.display()
    );
    books[0].clone()
}

/// Sum of `duplicates=N` in the Elasticsearch output's debug lines (run
/// with `RUST_LOG=info,logpipe::output::elasticsearch=debug`): how many
/// events were answered 409, already indexed.
pub fn duplicates_logged(log: &std::path::Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Documents already indexed"))
        .filter_map(|l| {
            let rest = l.split("duplicates=").nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Produces `records` (key, payload) to `topic` and waits until every one
/// is delivered.
pub async fn produce(
    brokers: &str,
    topic: &str,
    records: impl IntoIterator<Item = (Option<String>, Vec<u8>)>,
) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for (key, payload) in records {
        let mut record = FutureRecord::<String, _>::to(topic).payload(&payload);
        if let Some(key) = &key {
            record = record.key(key);
        }
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in deliveries {
        d.await.unwrap().unwrap();
    }
}

/// A day of its own per run, so the daily indices of two runs never mix:
/// as an access log writes it (`07/Mar/2004`) and as ISO (`2004-03-07`).
pub fn random_day() -> (String, String) {
    let year = 1990 + fastrand::u32(0..30);
    let day = 1 + fastrand::u32(0..28);
    (
        format!("{day:02}/Mar/{year}"),
        format!("{year}-03-{day:02}"),
    )
}
