//! The index half of the Kafka hop: a consumer-group member that turns
//! records into events and stores a partition's offset only once every event
//! up to it was acknowledged downstream, per partition and in order.
//!
//! librdkafka commits the stored offsets every second. When partitions are
//! revoked (a member joins or leaves), the rebalance callback first waits,
//! up to `revoke_timeout`, for the partitions' in-flight events to be
//! acknowledged, stores and commits their offsets, and only then lets the
//! partitions go: the next owner replays at most the unacknowledged tail,
//! and deterministic document ids keep that replay free of duplicates.
//! Both protocols are incremental (KIP-848 `consumer`, classic with
//! `cooperative-sticky`): a revoke names only the partitions that move, and
//! only their state is dropped; the others keep being consumed.
//!
//! The member is static by default (`group.instance.id`): a clean stop does
//! not leave the group, so a restart within the session timeout gets the
//! same partitions back without a rebalance. librdkafka declares some
//! group errors fatal (a fenced or refused instance id, a broker without
//! KIP-848); the consumer then consumes nothing more, so it is replaced or
//! the stage fails with the reason, never left waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::ack::{AckTracker, LaneId};
use crate::error::StageError;
use crate::event::{Batch, Event};
use crate::kafka::codec::{self, Origin};
use crate::kafka::context::LogContext;
use crate::kafka::{GroupProtocol, Hop};
use crate::shutdown::RunCx;
use crate::telemetry::Throttle;

/// Events per batch from one partition.
const BATCH_EVENTS: usize = 1024;
/// How long a partial batch waits for more records.
const LINGER: Duration = Duration::from_millis(20);
/// How often acknowledged offsets are stored for the next commit.
const STORE_EVERY: Duration = Duration::from_millis(100);

type Consumer_ = StreamConsumer<GroupContext>;
type PartitionKey = (String, i32);

struct Partition {
    lane: LaneId,
    /// Records read but not yet sent downstream.
    events: Vec<Event>,
    last_offset: i64,
}

/// What the consumer task and the rebalance callback share: positions per
/// partition. Locked briefly, never across an `.await`.
#[derive(Default)]
struct Offsets {
    tracker: AckTracker<i64>,
    partitions: HashMap<PartitionKey, Partition>,
}

impl Offsets {
    /// Acknowledged positions as a list of offsets to store (next to read).
    fn progress(&mut self) -> TopicPartitionList {
        self.tracker.drain();
        let mut tpl = TopicPartitionList::new();
        for (lane, offset) in self.tracker.take_progress() {
            if let Some(((topic, partition), _)) =
                self.partitions.iter().find(|(_, p)| p.lane == lane)
            {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(offset + 1));
            }
        }
        tpl
    }

    fn in_flight(&self, keys: &[PartitionKey]) -> usize {
        keys.iter()
            .filter_map(|k| self.partitions.get(k))
            .map(|p| self.tracker.lane_in_flight(p.lane))
            .sum()
    }
}

#[derive(Clone)]
struct SharedOffsets(Arc<Mutex<Offsets>>);

impl SharedOffsets {
    fn lock(&self) -> MutexGuard<'_, Offsets> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The consumer's librdkafka context: logging, and the revoke protocol.
pub struct GroupContext {
    log: LogContext,
    pipeline: String,
    offsets: SharedOffsets,
    revoke_timeout: Duration,
    group: String,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.log.stats(&statistics);
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1: not known yet, or not a partition this member consumes.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!(
                        "logpipe_kafka_consumer_lag",
                        "pipeline" => self.pipeline.clone(),
                        "group" => self.group.clone(),
                        "topic" => topic.clone(),
                        "partition" => partition.to_string()
                    )
                    .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Logged once librdkafka applied it (post_rebalance), with the
            // total held: under the incremental protocols `tpl` is only
            // what is added.
            Rebalance::Assign(_) => {}
            Rebalance::Revoke(tpl) => self.revoke(consumer, tpl),
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "Kafka rebalance error.")
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let held = consumer.assignment().map_or(0, |a| a.count());
            if tpl.count() == 0 {
                // KIP-848 acknowledges an unchanged assignment this way.
                tracing::debug!(group = %self.group, partitions = held, "Kafka assignment unchanged.");
            } else {
                tracing::info!(group = %self.group, added = tpl.count(), partitions = held, "Kafka partitions assigned.");
            }
        }
    }
}

impl GroupContext {
    /// Runs on the consumer's polling thread, before librdkafka takes the
    /// partitions away: waits for their in-flight events, then commits.
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let revoked: Vec<PartitionKey> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let deadline = Instant::now() + self.revoke_timeout;
        loop {
            let (progress, pending) = {
                let mut offsets = self.offsets.lock();
                (offsets.progress(), offsets.in_flight(&revoked))
            };
            if progress.count() > 0 {
                let _ = consumer.store_offsets(&progress);
            }
            if pending == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(group = %self.group, batches = pending, "Revoked partitions still have unacknowledged events; their next owner reads them again.");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "Commit before revoke.");
        }
        let mut offsets = self.offsets.lock();
        for key in &revoked {
            // Records read but not sent are dropped: their next owner
            // starts at the committed offset.
            if let Some(p) = offsets.partitions.remove(key) {
                offsets.tracker.close_lane(p.lane);
            }
        }
        tracing::info!(group = %self.group, partitions = revoked.len(), "Kafka partitions revoked after committing acknowledged offsets.");
    }
}

/// Why a consumer was given up for a new one.
enum Renew {
    /// The broker has no KIP-848 consumer groups: join again under the
    /// classic protocol.
    Classic,
    /// KIP-848 refused this member's `group.instance.id` because a member
    /// with it has not left yet (a process killed without leaving, until
    /// the broker's session timeout removes it): join again after a pause.
    Unreleased,
}

/// What ended a consumer's run.
enum Ended {
    Done(Result<(), StageError>),
    Renew(Renew),
}

/// How long a member whose `group.instance.id` is not released yet waits
/// before it asks again: doubling from the first, up to the last (each try
/// is a new consumer, and librdkafka logs the failed close of the last).
const UNRELEASED_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(8));

pub async fn run(hop: Hop, out: mpsc::Sender<Batch>, cx: RunCx) -> Result<(), StageError> {
    if hop.ensure_topic {
        // The index half may run on hosts without a ship half (`--role
        // index`): it creates what it consumes too.
        crate::kafka::admin::ensure_consumed(&hop, &cx.pipeline).await?;
    }
    // Held until the consumer is gone (declared first, dropped last).
    let claim = match &hop.group_instance_id {
        Some(wanted) => {
            let claim = crate::kafka::instance::claim(&hop.group_id, wanted)
                .map_err(|e| StageError::Fatal(e.to_string()))?;
            if claim.id != wanted.id {
                tracing::info!(group = %hop.group_id, wanted = %wanted.id, instance = %claim.id, "Another logpipe process on this host is a member of this group under the default group_instance_id; this one joins under the next free one.");
            }
            Some(claim)
        }
        None => None,
    };
    let instance = claim.as_ref().map(|c| c.id.clone());
    let offsets = SharedOffsets(Arc::new(Mutex::new(Offsets {
        tracker: AckTracker::new().counting(Arc::clone(cx.books.ledger())),
        partitions: HashMap::new(),
    })));
    let first_log = LogContext::for_hop(&cx.pipeline, "consumer", &hop);
    let recovery = first_log.recovery();
    let mut log = Some(first_log);
    let mut protocol = hop.group_protocol;
    let mut pause = UNRELEASED_RETRY.0;
    let mut state = State {
        recovery,
        events_in: metrics::counter!("logpipe_events_in_total", "pipeline" => cx.pipeline.to_string(), "stage" => "input.kafka"),
        hop,
        offsets,
        warn: Throttle::warnings(),
        last_flush: Instant::now(),
        instance,
        protocol,
        announced: None,
    };
    loop {
        let log = log
            .take()
            .unwrap_or_else(|| LogContext::sharing(&state.recovery, "consumer"));
        state.protocol = protocol;
        let consumer = state.connect(log, &cx)?;
        match state.consume(&consumer, &out, &cx).await {
            Ended::Done(result) => {
                drop(out);
                state.finish(&consumer, &cx).await;
                drop(consumer);
                drop(claim);
                return result;
            }
            Ended::Renew(Renew::Classic) => {
                state.forget_partitions();
                protocol = GroupProtocol::Classic;
            }
            Ended::Renew(Renew::Unreleased) => {
                drop(consumer);
                state.forget_partitions();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = cx.shutdown.stop.cancelled() => return Ok(()),
                }
                pause = (pause * 2).min(UNRELEASED_RETRY.1);
            }
        }
    }
}

struct State {
    recovery: crate::kafka::context::Recovery,
    events_in: metrics::Counter,
    hop: Hop,
    offsets: SharedOffsets,
    warn: Throttle,
    last_flush: Instant,
    /// The `group.instance.id` this process claimed (static membership).
    instance: Option<String>,
    /// The protocol of the current consumer.
    protocol: GroupProtocol,
    /// The protocol "Consuming." was last logged for (a renewed consumer
    /// under the same one is not news).
    announced: Option<GroupProtocol>,
}

impl State {
    /// Drops the state of every partition before a new consumer joins: it
    /// owns none of them yet (a fatally failed consumer has lost them), and
    /// their next owner starts at the committed offsets.
    fn forget_partitions(&self) {
        let mut offsets = self.offsets.lock();
        let offsets = &mut *offsets;
        for (_, p) in offsets.partitions.drain() {
            offsets.tracker.close_lane(p.lane);
        }
    }

    /// A consumer of the hop's topics under the current protocol.
    fn connect(&mut self, log: LogContext, cx: &RunCx) -> Result<Consumer_, StageError> {
        let hop = &self.hop;
        let context = GroupContext {
            log,
            pipeline: cx.pipeline.to_string(),
            offsets: self.offsets.clone(),
            revoke_timeout: hop.revoke_timeout,
            group: hop.group_id.clone(),
        };
        let consumer: Consumer_ = hop
            .consumer_config(self.protocol, self.instance.as_deref())
            .create_with_context(context)
            .map_err(|e| StageError::kafka(format!("consumer for {}", hop.brokers.join(",")), e))?;
        let topics: Vec<&str> = hop.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| StageError::kafka(format!("subscribe to {}", hop.topics.join(",")), e))?;
        if self.announced != Some(self.protocol) {
            self.announced = Some(self.protocol);
            tracing::info!(
                group = %hop.group_id,
                protocol = self.protocol.as_str(),
                instance = self.instance.as_deref().unwrap_or("-"),
                topics = %hop.topics.join(","),
                "Consuming."
            );
        }
        Ok(consumer)
    }

    /// librdkafka's fatal error, if the consumer has one: it consumes no
    /// more. Either it is renewed (a broker without KIP-848, an instance id
    /// not released yet) or the stage fails with the reason, naming group,
    /// instance and brokers, rather than waiting for records forever.
    fn fatal(&mut self, consumer: &Consumer_) -> Option<Ended> {
        let (code, reason) = consumer.client().fatal_error()?;
        let hop = &self.hop;
        let instance = self.instance.as_deref().unwrap_or("-");
        let brokers = hop.brokers.join(",");
        match code {
            RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion
                if self.protocol == GroupProtocol::Consumer && !hop.group_protocol_set =>
            {
                tracing::warn!(group = %hop.group_id, %brokers, %reason, "The brokers do not support the KIP-848 consumer group protocol; joining under the classic protocol (cooperative-sticky) instead. Set group_protocol = \"classic\" to skip this attempt.");
                Some(Ended::Renew(Renew::Classic))
            }
            RDKafkaErrorCode::UnreleasedInstanceId => {
                if let Some(suppressed) = self.warn.ready() {
                    tracing::warn!(group = %hop.group_id, %instance, suppressed, "A member with this group_instance_id has not left the group yet (a process that stopped without leaving, until the broker's session timeout removes it; or another process elsewhere with the same id): asking again.");
                }
                self.recovery.degraded(&format!(
                    "Kafka: group_instance_id {instance} of group {} not released yet",
                    hop.group_id
                ));
                Some(Ended::Renew(Renew::Unreleased))
            }
            RDKafkaErrorCode::FencedInstanceId => Some(Ended::Done(Err(StageError::Fatal(format!(
                "Kafka consumer of group {} at {brokers} was fenced: another member joined with the same group_instance_id {instance}; give each process its own group_instance_id (or set static_membership = false)",
                hop.group_id
            ))))),
            _ => Some(Ended::Done(Err(StageError::Fatal(format!(
                "Kafka consumer of group {} (instance {instance}, protocol {}) at {brokers} failed fatally: {reason}",
                hop.group_id,
                self.protocol.as_str()
            ))))),
        }
    }

    async fn consume(
        &mut self,
        consumer: &Consumer_,
        out: &mpsc::Sender<Batch>,
        cx: &RunCx,
    ) -> Ended {
        match self.consume_until_fatal(consumer, out, cx).await {
            Ok(Some(renew)) => renew,
            Ok(None) => Ended::Done(Ok(())),
            Err(e) => Ended::Done(Err(e)),
        }
    }

    async fn consume_until_fatal(
        &mut self,
        consumer: &Consumer_,
        out: &mpsc::Sender<Batch>,
        cx: &RunCx,
    ) -> Result<Option<Ended>, StageError> {
        let stop = cx.shutdown.stop.clone();
        let mut store = tokio::time::interval(STORE_EVERY);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(None),
                _ = store.tick() => {
                    self.store_progress(consumer);
                    if let Some(ended) = self.fatal(consumer) {
                        return Ok(Some(ended));
                    }
                }
                received = tokio::time::timeout(LINGER, consumer.recv()) => match received {
                    Ok(Ok(message)) => {
                        self.warn.reset();
                        self.recovery.answered();
                        self.events_in.increment(1);
                        let full = self.add(&message);
                        drop(message);
                        if let Some(key) = full {
                            self.flush(&key, out, cx).await?;
                        }
                        if self.last_flush.elapsed() >= LINGER {
                            self.flush_all(out, cx).await?;
                        }
                    }
                    Ok(Err(e)) => {
                        if let Some(ended) = self.fatal(consumer) {
                            return Ok(Some(ended));
                        }
                        if let Some(suppressed) = self.warn.ready() {
                            tracing::warn!(error = %e, suppressed, "Kafka consumer error; retrying.");
                        }
                    }
                    Err(_) => self.flush_all(out, cx).await?,
                },
            }
            if self.offsets.lock().tracker.has_failed() {
                return Err(StageError::Undelivered);
            }
        }
    }

    /// Adds a record to its partition's batch; returns the partition when
    /// the batch is full.
    fn add(&mut self, message: &BorrowedMessage<'_>) -> Option<PartitionKey> {
        let origin = Origin {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            timestamp: message.timestamp().to_millis(),
        };
        let event = codec::decode(
            message.payload(),
            &origin,
            self.hop.codec,
            self.hop.decorate_events,
        );
        let key = (message.topic().to_owned(), message.partition());
        let mut offsets = self.offsets.lock();
        let offsets = &mut *offsets;
        let tracker = &mut offsets.tracker;
        let partition = offsets
            .partitions
            .entry(key.clone())
            .or_insert_with(|| Partition {
                lane: tracker.open_lane(),
                events: Vec::new(),
                last_offset: -1,
            });
        partition.events.push(event);
        partition.last_offset = message.offset();
        (partition.events.len() >= BATCH_EVENTS).then_some(key)
    }

    async fn flush_all(&mut self, out: &mpsc::Sender<Batch>, cx: &RunCx) -> Result<(), StageError> {
        self.last_flush = Instant::now();
        let keys: Vec<PartitionKey> = self
            .offsets
            .lock()
            .partitions
            .iter()
            .filter(|(_, p)| !p.events.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.flush(&key, out, cx).await?;
        }
        Ok(())
    }

    async fn flush(
        &mut self,
        key: &PartitionKey,
        out: &mpsc::Sender<Batch>,
        cx: &RunCx,
    ) -> Result<(), StageError> {
        let batch = {
            let mut offsets = self.offsets.lock();
            let offsets = &mut *offsets;
            let Some(partition) = offsets.partitions.get_mut(key) else {
                return Ok(());
            };
            if partition.events.is_empty() {
                return Ok(());
            }
            let events = std::mem::take(&mut partition.events);
            let token = offsets
                .tracker
                .track(partition.lane, partition.last_offset, events.len());
            Batch::new(events, token)
        };
        tokio::select! {
            sent = out.send(batch) => {
                sent.map_err(|_| StageError::Fatal("the next stage stopped".into()))
            }
            // Unsent: the batch's token fails, the offset is not stored, the
            // records are consumed again after a restart.
            _ = cx.shutdown.stop.cancelled() => Ok(()),
        }
    }

    /// Stores the offsets of acknowledged events, for librdkafka to commit.
    fn store_progress(&mut self, consumer: &Consumer_) {
        let progress = self.offsets.lock().progress();
        if progress.count() == 0 {
            return;
        }
        if let Err(e) = consumer.store_offsets(&progress) {
            // Partitions revoked meanwhile: their new owner reads the
            // unacknowledged tail again.
            tracing::debug!(error = %e, "Cannot store offsets.");
        }
    }

    /// Waits for in-flight batches (until the drain deadline), stores their
    /// offsets and commits synchronously.
    async fn finish(&mut self, consumer: &Consumer_, cx: &RunCx) {
        let abort = cx.shutdown.abort.clone();
        loop {
            self.store_progress(consumer);
            let (in_flight, failed) = {
                let offsets = self.offsets.lock();
                (offsets.tracker.in_flight(), offsets.tracker.has_failed())
            };
            if in_flight == 0 || failed {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = abort.cancelled() => break,
            }
        }
        self.store_progress(consumer);
        let undelivered = self.offsets.lock().tracker.in_flight();
        if undelivered > 0 {
            tracing::warn!(batches = undelivered, group = %self.hop.group_id, "Stopping with undelivered batches; their offsets are not committed, so they are consumed again.");
            crate::shutdown::record_undelivered(&cx.pipeline, "input.kafka", undelivered);
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!(group = %self.hop.group_id, "Committed consumer offsets."),
            // NoOffset: nothing new to commit.
            Err(e) => tracing::debug!(error = %e, "Final commit."),
        }
        consumer.unsubscribe();
    }
}
