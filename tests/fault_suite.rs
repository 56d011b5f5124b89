//! The fault suite: the whole route — files → logpipe ship → Kafka →
//! logpipe index → Elasticsearch — with logpipe as child processes, while a
//! writer appends numbered httpd lines. Faults are injected (kill -9, broker
//! and Elasticsearch outages through proxies, bad input), and at the end the
//! indexed set must equal the written set: zero lost, zero duplicated.
//!
//! The writer rotates its file every 1000 lines in every scenario,
//! alternating rename + create and copytruncate. Each scenario prints what
//! it did and its counts.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One route under test, with its own listener of the broker (behind a
/// proxy, so it can be cut) and its own indices on the shared Elasticsearch (behind a proxy).
struct Route {
    name: String,
    dir: tempfile::TempDir,
    /// The brokers the route's processes bootstrap from.
    brokers: String,
    /// The index half's consumer group (named after the topic).
    group: String,
    _broker: Option<BrokerSlot>,
    /// The proxy in front of the broker (none for a broker of the test's own).
    kafka: Option<Proxy>,
    es_proxy: Proxy,
    es: Es,
    pipeline: PathBuf,
    log: PathBuf,
    ship: Option<Child>,
    index: Option<Child>,
}

impl Route {
    async fn new(name: &str) -> Option<Route> {
        Self::with_kafka(name, "").await
    }

    /// A route whose `[kafka]` section also has `extra` (lines).
    async fn with_kafka(name: &str, extra: &str) -> Option<Route> {
        let svc = services()?;
        let (broker, kafka) = proxied_broker().await;
        let brokers = format!("127.0.0.1:{}", kafka.port);
        Some(Self::build(name, svc, brokers, Some(broker), Some(kafka), extra).await)
    }

    async fn build(
        name: &str,
        svc: Services,
        brokers: String,
        broker: Option<BrokerSlot>,
        kafka: Option<Proxy>,
        extra: &str,
    ) -> Route {
        let dir = temp_dir();
        let es_addr = svc
            .es
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let es_proxy = Proxy::start(es_addr).await;
        let topic = unique(&format!("fault-{name}"));
        create_topic(&brokers, &topic, 3).await;
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let log = logs.join("access_log");
        let index = unique(&format!("fault-{name}"));
        let pipeline = pipeline_toml("fault")
            .file_input(format!("{}*", log.display()))
            .with("tags = [\"httpd_access\"]\npoll_interval = \"50ms\"")
            .kafka(&brokers, &topic)
            .group(&topic)
            .with("revoke_timeout = \"3s\"")
            .with(extra)
            .elasticsearch_output(
                &format!("http://127.0.0.1:{}", es_proxy.port),
                &format!("{index}-%{{+YYYY.MM.dd}}"),
            )
            .with("batch_wait = \"200ms\"")
            .write_to(dir.path().join("route.toml"));
        Route {
            name: index,
            dir,
            brokers,
            group: topic,
            _broker: broker,
            kafka,
            es_proxy,
            es: Es::new(&svc.es),
            pipeline,
            log,
            ship: None,
            index: None,
        }
    }

    fn spawn(&self, role: &str) -> Child {
        self.spawn_as(role, role)
    }

    /// A process of `role` with state dir and log named `tag`.
    fn spawn_as(&self, role: &str, tag: &str) -> Child {
        let state = self.dir.path().join(format!("{tag}-state"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{tag}.log")))
            .unwrap();
        logpipe()
            .arg("run")
            .arg(&self.pipeline)
            .args(["--role", role, "--metrics-address", "off", "--state-dir"])
            .arg(state)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn start(&mut self) {
        self.ship = Some(self.spawn("ship"));
        self.index = Some(self.spawn("index"));
    }

    /// kill -9, then a restart (never two of a role at once: they would
    /// share a state directory).
    fn kill(&mut self, role: &str) {
        let old = if role == "ship" {
            self.ship.take()
        } else {
            self.index.take()
        };
        if let Some(mut c) = old {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let fresh = Some(self.spawn(role));
        if role == "ship" {
            self.ship = fresh;
        } else {
            self.index = fresh;
        }
    }

    fn stop(&mut self) {
        for child in [self.ship.take(), self.index.take()].into_iter().flatten() {
            let mut child = child;
            sigterm(&child);
            let status = wait_exit(&mut child, Duration::from_secs(60));
            assert!(status.success(), "{} exited with {status}", self.name);
        }
    }

    fn pattern(&self) -> String {
        format!("{}-*", self.name)
    }

    /// Waits until the route carries lines end to end: the first
    /// documents are indexed.
    async fn flowing(&self) {
        let pattern = self.pattern();
        eventually(
            Duration::from_secs(90),
            &format!("{}: the first documents indexed", self.name),
            || async { (self.es.count(&pattern).await > 0).then_some(()) },
        )
        .await;
    }

    /// Waits until the log of the process tagged `tag` says `text`.
    async fn logged(&self, tag: &str, text: &str) {
        let log = self.dir.path().join(format!("{tag}.log"));
        eventually(
            Duration::from_secs(60),
            &format!("{}: {text:?} in {tag}.log", self.name),
            || {
                let found = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(text);
                async move { found.then_some(()) }
            },
        )
        .await;
    }

    /// Waits until the index half's group is stable with `members`
    /// members, each holding some of the topic's 3 partitions.
    async fn group_settled(&self, members: usize) {
        eventually(
            Duration::from_secs(90),
            &format!("{}: the group stable with {members} members", self.name),
            || {
                let (brokers, group) = (self.brokers.clone(), self.group.clone());
                async move {
                    let d = tokio::task::spawn_blocking(move || describe_group(&brokers, &group))
                        .await
                        .unwrap()
                        .ok()?;
                    let held: usize = d.members.iter().map(|m| m.partitions.len()).sum();
                    (d.state == "Stable"
                        && d.members.len() == members
                        && held == 3
                        && d.members.iter().all(|m| !m.partitions.is_empty()))
                    .then_some(())
                }
            },
        )
        .await;
    }

    /// Waits until `expected` documents are indexed and stay so; returns
    /// the numbers of the indexed lines and how many documents there are.
    async fn settle(&self, expected: u64) -> (BTreeMap<u64, usize>, u64) {
        let pattern = self.pattern();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let n = self.es.count(&pattern).await;
            if n >= expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: only {n} of {expected} indexed",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // A sleep, not a wait: a negative check, no late duplicate may arrive meanwhile.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let docs = self.es.count(&pattern).await;
        let mut seen = BTreeMap::new();
        if docs <= 10_000 {
            for hit in self.es.search_all(&pattern, 10_000).await {
                let message = hit["_source"]["message"].as_str().unwrap_or_default();
                if let Some(n) = line_number(message) {
                    *seen.entry(n).or_insert(0) += 1;
                }
            }
        }
        (seen, docs)
    }

    /// The books of the last ship and index processes, from their last
    /// words: each half balances exactly, and what the index half says it
    /// indexed agrees with the `docs` Elasticsearch holds. With
    /// `whole_run` (one index process for the whole scenario) every
    /// document is its doing: `indexed ≤ docs ≤ indexed + already indexed`
    /// (a request whose answer was lost is retried and meets its document).
    fn assert_books(&self, what: &str, docs: u64, whole_run: bool) -> (ClosedBooks, ClosedBooks) {
        let ship = closed_books_of(&self.dir.path().join("ship.log"), "ship");
        ship.assert_exact(&format!("{what}, ship half"));
        let index = closed_books_of(&self.dir.path().join("index.log"), "index");
        index.assert_exact(&format!("{what}, index half"));
        assert!(
            index.delivered <= docs,
            "{what}: the index half says it indexed {} of {docs} documents",
            index.delivered
        );
        if whole_run {
            assert!(
                docs <= index.delivered + index.already_indexed,
                "{what}: {docs} documents, but the only index process indexed {} (+ {} already there)",
                index.delivered,
                index.already_indexed
            );
        }
        (ship, index)
    }

    fn rss_mib(&self) -> Vec<f64> {
        [&self.ship, &self.index]
            .into_iter()
            .flatten()
            .filter_map(|c| rss_of(c.id()))
            .collect()
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        for child in [self.ship.take(), self.index.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn line(n: u64) -> String {
    let now = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    format!(
        "192.0.2.{} - - [{now}] \"GET /fault/{n} HTTP/1.1\" 200 {n} \"-\" \"fault-suite\"\n",
        n % 250
    )
}

fn line_number(message: &str) -> Option<u64> {
    let rest = message.split("/fault/").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// Appends lines `from..to` at about `rate` lines per second, rotating the
/// file every `ROTATE_EVERY` lines, alternately by rename + create (as
/// logrotate's default) and by copytruncate, with the copies matched by the
/// input's glob (`access_log*`).
fn write_numbered(path: &Path, from: u64, to: u64, rate: u64) {
    const ROTATE_EVERY: u64 = 1000;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    };
    let mut f = open();
    let start = Instant::now();
    for n in from..to {
        if n > from && n % ROTATE_EVERY == 0 {
            f.flush().unwrap();
            let rotated = PathBuf::from(format!("{}.{n}", path.display()));
            if (n / ROTATE_EVERY).is_multiple_of(2) {
                std::fs::rename(path, &rotated).unwrap();
                f = open();
            } else {
                std::fs::copy(path, &rotated).unwrap();
                f.set_len(0).unwrap();
            }
        }
        f.write_all(line(n).as_bytes()).unwrap();
        let due = Duration::from_secs_f64((n - from) as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            if (n - from).is_multiple_of(50) {
                f.flush().unwrap();
                // A sleep, not a wait: the writer's pace (`rate` lines a second).
                std::thread::sleep(wait);
            }
        }
    }
    f.flush().unwrap();
}

fn assert_exact(name: &str, seen: &BTreeMap<u64, usize>, docs: u64, written: u64) {
    let lost: Vec<u64> = (0..written).filter(|n| !seen.contains_key(n)).collect();
    let duplicated: Vec<(&u64, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    println!(
        "{name}: written {written}, indexed {docs}, lost {}, duplicated {}",
        lost.len(),
        duplicated.len()
    );
    assert!(
        lost.is_empty(),
        "{name}: lost lines {:?}…",
        &lost[..lost.len().min(10)]
    );
    assert!(
        duplicated.is_empty(),
        "{name}: duplicated lines {:?}…",
        &duplicated[..duplicated.len().min(20)]
    );
    assert_eq!(docs, written, "{name}: documents");
}

async fn run_kills(role: &'static str) {
    let Some(mut route) = Route::new(&format!("kill-{role}")).await else {
        return;
    };
    route.start();
    let total = 4000;
    let log = route.log.clone();
    let writer = std::thread::spawn(move || write_numbered(&log, 0, total, 800));
    for round in 0..3 {
        // A sleep, not a wait: the kill lands at a random moment, whatever the route is doing.
        tokio::time::sleep(Duration::from_millis(800 + fastrand::u64(0..1200))).await;
        route.kill(role);
        println!(
            "kill-{role}: kill -9 of the {role} process #{} and restart",
            round + 1
        );
    }
    writer.join().unwrap();
    let (seen, docs) = route.settle(total).await;
    route.stop();
    assert_exact(&format!("kill -9 {role} ×3"), &seen, docs, total);
    route.assert_books(&format!("kill -9 {role} ×3"), docs, role == "ship");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_ship_process_loses_and_duplicates_nothing() {
    run_kills("ship").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_index_process_loses_and_duplicates_nothing() {
    run_kills("index").await;
}

/// Which service an outage scenario cuts off.
#[derive(Clone, Copy)]
enum Outage {
    Broker,
    Elasticsearch,
}

async fn run_outage(outage: Outage) {
    let (name, what) = match outage {
        Outage::Broker => ("broker-down", "broker"),
        Outage::Elasticsearch => ("es-down", "Elasticsearch"),
    };
    let Some(mut route) = Route::new(name).await else {
        return;
    };
    route.start();
    let total = 3000;
    let log = route.log.clone();
    let writer = std::thread::spawn(move || write_numbered(&log, 0, total, 600));
    // The outage begins mid-stream, once lines reach the index.
    route.flowing().await;
    let proxy = match outage {
        Outage::Broker => route.kafka.as_ref().unwrap(),
        Outage::Elasticsearch => &route.es_proxy,
    };
    proxy.set_up(false);
    println!("{name}: {what} unreachable for 6 s while the writer writes");
    // A sleep, not a wait: the outage's length is the scenario.
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.set_up(true);
    writer.join().unwrap();
    let (seen, docs) = route.settle(total).await;
    route.stop();
    assert_exact(&format!("{what} outage"), &seen, docs, total);
    let (ship, _) = route.assert_books(&format!("{what} outage"), docs, true);
    assert!(
        ship.read >= total,
        "{what} outage: the ship half read {} of {total}",
        ship.read
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_outage_loses_and_duplicates_nothing() {
    run_outage(Outage::Broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_elasticsearch_outage_loses_and_duplicates_nothing() {
    run_outage(Outage::Elasticsearch).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_ends_as_tagged_documents_never_silently_gone() {
    let Some(mut route) = Route::new("bad-input").await else {
        return;
    };
    route.start();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&route.log)
        .unwrap();
    let mut written = 0u64;
    for n in 0..300u64 {
        f.write_all(line(n).as_bytes()).unwrap();
        written += 1;
        if n % 100 == 50 {
            f.write_all(format!("\x00\x01\x02 garbage bytes /fault/g{n} \x7f\x1b[0m\n").as_bytes())
                .unwrap();
            f.write_all(b"invalid utf-8 \xff\xfe\xfd /fault/u").unwrap();
            f.write_all(format!("{n} end\n").as_bytes()).unwrap();
            f.write_all(format!("not an httpd line at all /fault/p{n} \n").as_bytes())
                .unwrap();
            f.write_all(
                format!("huge line /fault/h{n} {}\n", "x".repeat(5 * 1024 * 1024)).as_bytes(),
            )
            .unwrap();
            written += 4;
        }
    }
    f.flush().unwrap();
    let (_, docs) = route.settle(written).await;
    let hits = route.es.search_all(&route.pattern(), 1000).await;
    route.stop();
    let tagged = |tag: &str| {
        hits.iter()
            .filter(|h| {
                h["_source"]["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == tag))
            })
            .count()
    };
    let dead_letters = std::fs::read_to_string(
        route
            .dir
            .path()
            .join("index-state/dead-letter/fault.ndjson"),
    )
    .map(|t| t.lines().count())
    .unwrap_or(0);
    println!(
        "bad input: written {written} lines (12 bad), indexed {docs}, tagged _invalid_utf8 {}, _truncated {}, dead-lettered {dead_letters}",
        tagged("_invalid_utf8"),
        tagged("_truncated")
    );
    assert_eq!(
        docs + dead_letters as u64,
        written,
        "every line is a document or a dead letter"
    );
    assert_eq!(tagged("_invalid_utf8"), 3);
    assert_eq!(tagged("_truncated"), 3);
    let (ship, index) = route.assert_books("bad input", docs, true);
    assert_eq!(ship.read, written, "bad input: every line read once");
    assert_eq!(
        (index.delivered, index.dead_lettered),
        (docs, dead_letters as u64),
        "bad input: the index half's books say what the index and the dead-letter file hold"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_bounded_while_elasticsearch_is_down() {
    let Some(mut route) = Route::new("memory").await else {
        return;
    };
    route.start();
    // Both halves up before Elasticsearch goes: the ship half running, the
    // index half in its group.
    route.logged("ship", "logpipe is running.").await;
    route.logged("index", "Kafka partitions assigned.").await;
    route.es_proxy.set_up(false);
    let total = 40_000;
    let log = route.log.clone();
    let writer = std::thread::spawn(move || write_numbered(&log, 0, total, 20_000));
    let mut peak: f64 = 0.0;
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        peak = route.rss_mib().into_iter().fold(peak, f64::max);
        // A sleep, not a wait: the sampling interval of a 12 s measurement.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.join().unwrap();
    route.es_proxy.set_up(true);
    let (_, docs) = route.settle(total).await;
    route.stop();
    println!("memory: {total} lines written during a 12 s Elasticsearch outage; peak RSS {peak:.0} MiB; indexed {docs}");
    assert!(peak < 256.0, "peak RSS {peak:.0} MiB");
    assert_eq!(docs, total);
    route.assert_books("memory", docs, true);
}

/// The broker itself (a real one of this test's own, its log on disk)
/// stopped mid-stream and started again on the same port: both halves carry
/// on by themselves.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_stopped_and_started_again_loses_and_duplicates_nothing() {
    let Some(svc) = services() else { return };
    let broker_dir = temp_dir();
    let mut kafka = OwnKafka::new(&broker_dir.path().join("kafka"));
    kafka.start();
    let mut route = Route::build("broker-restart", svc, kafka.brokers(), None, None, "").await;
    route.start();
    let total = 3000;
    let log = route.log.clone();
    let writer = std::thread::spawn(move || write_numbered(&log, 0, total, 300));
    // The broker stops mid-stream, once lines reach the index.
    route.flowing().await;
    kafka.stop();
    println!("broker-restart: broker stopped (SIGTERM) while the writer writes");
    // A sleep, not a wait: how long the broker stays down is the scenario.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.start();
    println!("broker-restart: broker started again on the same port and log");
    writer.join().unwrap();
    let (seen, docs) = route.settle(total).await;
    route.stop();
    assert_exact("broker stop and start", &seen, docs, total);
    route.assert_books("broker stop and start", docs, true);
}

/// Processes killed when dropped (a failing test leaves none behind).
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Three indexers in one consumer group; one is killed (-9) mid-stream and
/// a fourth joins: the group rebalances twice and every line is indexed
/// exactly once. The indexers run one pipeline on one host, so they are
/// static members under distinct instance ids (the default id, then `-2`,
/// `-3`; the fourth takes the killed one's id back).
#[tokio::test(flavor = "multi_thread")]
async fn three_indexers_one_killed_and_one_added_lose_and_duplicate_nothing() {
    run_fleet("fleet", "").await;
}

/// The same under the classic protocol (cooperative-sticky), what logpipe
/// falls back to on a broker without KIP-848.
#[tokio::test(flavor = "multi_thread")]
async fn three_indexers_under_the_classic_protocol_lose_and_duplicate_nothing() {
    run_fleet("fleet-classic", "group_protocol = \"classic\"\n").await;
}

async fn run_fleet(name: &str, extra: &str) {
    let Some(mut route) = Route::with_kafka(name, extra).await else {
        return;
    };
    route.ship = Some(route.spawn("ship"));
    let mut fleet = Fleet(
        (1..=3)
            .map(|i| route.spawn_as("index", &format!("index-{i}")))
            .collect(),
    );
    let total = 4000;
    let log = route.log.clone();
    let writer = std::thread::spawn(move || write_numbered(&log, 0, total, 500));
    // The kill lands on a formed group (each indexer with partitions) that
    // indexes lines.
    route.group_settled(3).await;
    route.flowing().await;
    let mut killed = fleet.0.remove(1);
    killed.kill().unwrap();
    killed.wait().unwrap();
    println!("{name}: kill -9 of indexer 2 of 3");
    // A sleep, not a wait: the fourth joins a while after the kill, not with it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.0.push(route.spawn_as("index", "index-4"));
    println!("{name}: indexer 4 joins");
    writer.join().unwrap();
    let (seen, docs) = route.settle(total).await;
    for mut child in std::mem::take(&mut fleet.0) {
        sigterm(&child);
        let status = wait_exit(&mut child, Duration::from_secs(60));
        assert!(status.success(), "an indexer exited with {status}");
    }
    route.stop();
    let ids: Vec<String> = (1..=4)
        .map(|i| {
            let log = std::fs::read_to_string(route.dir.path().join(format!("index-{i}.log")))
                .unwrap_or_default();
            log.lines()
                .find(|l| l.contains("Consuming."))
                .and_then(|l| l.split("instance=").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned()
        })
        .collect();
    println!("{name}: group.instance.id of indexers 1-4: {ids:?}");
    let first_three: std::collections::BTreeSet<&String> = ids[..3].iter().collect();
    assert_eq!(first_three.len(), 3, "distinct ids on one host: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    assert_exact(
        &format!("{name}: 3 indexers, one killed, one added"),
        &seen,
        docs,
        total,
    );
    // The indexers stopped cleanly each balance; together they indexed
    // no more than the index holds (the killed one's share is unknown).
    let ship = closed_books_of(&route.dir.path().join("ship.log"), "ship");
    ship.assert_exact(&format!("{name}, ship half"));
    let mut indexed = 0;
    for i in [1, 3, 4] {
        let books = closed_books_of(&route.dir.path().join(format!("index-{i}.log")), "index");
        books.assert_exact(&format!("{name}, indexer {i}"));
        indexed += books.delivered;
    }
    assert!(
        indexed <= docs,
        "{name}: indexers 1, 3, 4 indexed {indexed} of {docs}"
    );
}
