//! The index half of the Kafka hop: a consumer-group member that turns
//! records into events and stores a partition's offset only once every event
//! up to it was acknowledged downstream. librdkafka commits stored offsets on
//! its interval and when partitions are revoked; the stage commits once more
//! at shutdown.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::ack::{AckTracker, LaneId};
use crate::error::StageError;
use crate::event::{Batch, Event};
use crate::kafka::codec::{self, Origin};
use crate::kafka::context::LogContext;
use crate::kafka::Hop;
use crate::shutdown::StageCx;
use crate::telemetry::Throttle;

/// Events per batch from one partition.
const BATCH_EVENTS: usize = 1024;
/// How long a partial batch waits for more records.
const LINGER: Duration = Duration::from_millis(20);

type Consumer_ = StreamConsumer<LogContext>;

struct Partition {
    lane: LaneId,
    events: Vec<Event>,
    last_offset: i64,
}

pub async fn run(hop: Hop, out: mpsc::Sender<Batch>, cx: StageCx) -> Result<(), StageError> {
    let consumer: Consumer_ = hop
        .consumer_config()
        .create_with_context(LogContext::new(&cx.pipeline, "consumer"))
        .map_err(|e| StageError::kafka(format!("consumer for {}", hop.brokers.join(",")), e))?;
    let topics: Vec<&str> = hop.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| StageError::kafka(format!("subscribe to {}", hop.topics.join(",")), e))?;
    tracing::info!(group = %hop.group_id, topics = %hop.topics.join(","), "Consuming.");

    let mut state = State {
        hop,
        tracker: AckTracker::new(),
        partitions: HashMap::new(),
        warn: Throttle::warnings(),
        last_flush: std::time::Instant::now(),
    };
    let result = state.consume(&consumer, &out, &cx).await;
    drop(out);
    state.finish(&consumer, &cx).await;
    result
}

struct State {
    hop: Hop,
    tracker: AckTracker<i64>,
    partitions: HashMap<(String, i32), Partition>,
    warn: Throttle,
    last_flush: std::time::Instant,
}

impl State {
    async fn consume(
        &mut self,
        consumer: &Consumer_,
        out: &mpsc::Sender<Batch>,
        cx: &StageCx,
    ) -> Result<(), StageError> {
        let stop = cx.shutdown.stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                _ = self.tracker.recv() => self.store_progress(consumer),
                received = tokio::time::timeout(LINGER, consumer.recv()) => match received {
                    Ok(Ok(message)) => {
                        self.warn.reset();
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
                        if let Some(suppressed) = self.warn.ready() {
                            tracing::warn!(error = %e, suppressed, "Kafka consumer error; retrying.");
                        }
                    }
                    Err(_) => self.flush_all(out, cx).await?,
                },
            }
            if self.tracker.has_failed() {
                return Err(StageError::Undelivered);
            }
        }
    }

    /// Adds a record to its partition's batch; returns the partition when
    /// the batch is full.
    fn add(&mut self, message: &BorrowedMessage<'_>) -> Option<(String, i32)> {
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
        let tracker = &mut self.tracker;
        let partition = self
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

    async fn flush_all(
        &mut self,
        out: &mpsc::Sender<Batch>,
        cx: &StageCx,
    ) -> Result<(), StageError> {
        self.last_flush = std::time::Instant::now();
        let keys: Vec<(String, i32)> = self
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
        key: &(String, i32),
        out: &mpsc::Sender<Batch>,
        cx: &StageCx,
    ) -> Result<(), StageError> {
        let Some(partition) = self.partitions.get_mut(key) else {
            return Ok(());
        };
        if partition.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut partition.events);
        let token = self.tracker.track(partition.lane, partition.last_offset);
        tokio::select! {
            sent = out.send(Batch::new(events, token)) => {
                sent.map_err(|_| StageError::Fatal("the next stage stopped".into()))
            }
            // Unsent: the batch's token fails, the offset is not stored, the
            // records are consumed again after a restart.
            _ = cx.shutdown.stop.cancelled() => Ok(()),
        }
    }

    /// Stores the offsets of acknowledged events, for librdkafka to commit.
    fn store_progress(&mut self, consumer: &Consumer_) {
        let progress = self.tracker.take_progress();
        if progress.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (lane, offset) in progress {
            if let Some(((topic, partition), _)) =
                self.partitions.iter().find(|(_, p)| p.lane == lane)
            {
                // The committed offset is the next one to read.
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(offset + 1));
            }
        }
        if let Err(e) = consumer.store_offsets(&tpl) {
            // Partitions revoked meanwhile: their new owner reads the
            // unacknowledged tail again, and deterministic ids keep that
            // free of duplicates downstream.
            tracing::debug!(error = %e, "Cannot store offsets.");
        }
    }

    /// Waits for in-flight batches (until the drain deadline), stores their
    /// offsets and commits synchronously.
    async fn finish(&mut self, consumer: &Consumer_, cx: &StageCx) {
        let abort = cx.shutdown.abort.clone();
        while self.tracker.in_flight() > 0 && !self.tracker.has_failed() {
            tokio::select! {
                _ = self.tracker.recv() => self.store_progress(consumer),
                _ = abort.cancelled() => break,
            }
        }
        self.tracker.drain();
        self.store_progress(consumer);
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!(group = %self.hop.group_id, "Committed consumer offsets."),
            // NoOffset: nothing new to commit.
            Err(e) => tracing::debug!(error = %e, "Final commit."),
        }
        consumer.unsubscribe();
    }
}
